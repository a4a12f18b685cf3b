"""edge-agent: on-device audience analytics for digital signage; only attributes ever leave the device."""

__version__ = "0.1.0"

"""Config adjustments from the command line (`--source`) and the human summaries `check-config` prints."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import AgentConfig, ConfigError, config_hash, default_device_id


def with_source(cfg: AgentConfig, spec: str) -> AgentConfig:
    """A copy of cfg whose first camera reads `spec` (demo, N, /dev/videoN, URL, file, folder); adds one if none."""
    from edge_agent.capture.config import CameraConfig, SourceSpecError, source_from_string

    try:
        source = source_from_string(spec)
    except SourceSpecError as exc:
        raise ConfigError(str(exc)) from None
    cameras = list(cfg.cameras)
    if cameras and cameras[0].source.type == source.type and source.type in ("folder", "file"):
        # Same kind of source: keep its settings (sequence, fps, limits, loop...) and change only the path, so
        # `--source DIR` on a config made for a time-lapse folder still tracks across its frames.
        source = cameras[0].source.model_copy(update={"path": source.path})
    if cameras:
        cameras[0] = cameras[0].model_copy(update={"source": source})
    else:
        cameras = [CameraConfig.model_validate({"source": source})]
    return cfg.model_copy(update={"cameras": cameras})


def device_id(cfg: AgentConfig) -> str:
    """The configured device id, else the derived one."""
    return cfg.agent.device_id or default_device_id()


def state_dir(cfg: AgentConfig) -> Path:
    from edge_agent.config.agent import default_state_dir

    return Path(cfg.agent.state_dir).expanduser() if cfg.agent.state_dir else default_state_dir()


def check_startup(cfg: AgentConfig) -> None:
    """Rules needing the environment (exit 2 when broken): the password secret exists for a configured username,
    it would not travel in plaintext, and the TLS files load. The publisher applies the same rules itself."""
    from edge_agent.publish.auth import resolve_credentials, tls_context

    resolve_credentials(cfg.mqtt)
    if cfg.mqtt.tls.enabled:
        tls_context(cfg.mqtt.tls)


def attribute_model_line(cfg: AgentConfig) -> str:
    """`attributes ok <name> <version> sha256 <hash> <path>` for `models list` (never raises)."""
    from edge_agent.classify import PACKAGED_MODEL

    path = cfg.attributes.model or PACKAGED_MODEL
    where = "packaged" if cfg.attributes.model is None else "attributes.model"
    try:
        from edge_agent.modelmeta import load_metadata

        meta = load_metadata(path)
        return f"{'attributes':30s} ok         {meta.name} {meta.version} sha256 {meta.sha256} ({where}) {path}"
    except Exception as exc:  # noqa: BLE001 - a listing reports problems instead of failing
        return f"{'attributes':30s} error      {' '.join(str(exc).split())}"


def describe_config(cfg: AgentConfig) -> list[str]:
    """What check-config prints: the config is valid, identity, cameras, heads, broker (no secrets)."""
    check_startup(cfg)
    lines = [
        "config ok",
        f"device_id    {device_id(cfg)}",
        f"config_hash  {config_hash(cfg)}",
        f"state_dir    {state_dir(cfg)}",
    ]
    for cam in cfg.cameras:
        from edge_agent.capture.config import describe_source

        lines.append(f"camera       {cam.id}: {describe_source(cam.source)}{'' if cam.enabled else ' (disabled)'}")
    if not cfg.cameras:
        lines.append("camera       (none configured: `run` needs --source or a [[cameras]] table)")
    heads = cfg.attributes.enabled()
    lines.append(f"attributes   {', '.join(heads) or 'none'}")
    mqtt = cfg.mqtt
    tls = "tls" if getattr(getattr(mqtt, "tls", None), "enabled", False) else "plain"
    user = f" user {mqtt.username}" if getattr(mqtt, "username", None) else ""
    lines.append(f"mqtt         {mqtt.host}:{mqtt.effective_port} ({tls}){user} prefix {mqtt.prefix}")
    return lines

"""The ``victoria-sip`` command."""

from __future__ import annotations

import json
import logging
import re
import os
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from victoria_sip import __version__, logs
from victoria_sip.application.call_export import FORMATS, export_lines
from victoria_sip.application.call_views import call_summary, call_with_turns
from victoria_sip.config import load_settings, parse_allow_entries, parse_host_port, parse_listen_or_off
from victoria_sip.domain import Call, CallFilter, CallId, CallStatus, ConsoleRole, ConsoleUser
from victoria_sip.errors import ConfigError, VictoriaError
from victoria_sip.settings import Settings, invite_sources

EXIT_CONFIG = 2
EXIT_FAILURE = 1




@click.group()
@click.version_option(__version__, prog_name="victoria-sip")
def main() -> None:
    """Victoria SIP: a self-hosted telephone voice agent."""


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML configuration file (default: embedded defaults).")
@click.option("--sip-listen", help="HOST:PORT for SIP (default 0.0.0.0:5060).")
@click.option("--db", "db_url", help="Database URL: sqlite:////path.db or postgresql://... (default: SQLite in the user data dir).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (for Promtail/Loki).")
@click.option("--metrics-listen", help="HOST:PORT for /metrics, /healthz and /readyz, or 'off' (default 127.0.0.1:9100).")
@click.option("--web-listen", help="HOST:PORT for the web console and its API, or 'off' (default 127.0.0.1:8080).")
@click.option("--offline", is_flag=True,
              help="Refuse to start unless every model is on local disk and every endpoint is inside [offline] networks.")
@click.option("--allow-invites-from", "allow_invites_from", multiple=True, metavar="NETWORKS",
              help="Also take calls from these networks, addresses or host names (comma-separated or repeated), "
                   "e.g. 192.168.1.0/24; by default only loopback and the registrars may call.")
def serve(config_path: Path | None, sip_listen: str | None, db_url: str | None, log_level: str, log_format: str,
          metrics_listen: str | None, web_listen: str | None, offline: bool,
          allow_invites_from: tuple[str, ...]) -> None:
    """Answer calls: register the configured extensions and answer direct SIP calls."""
    logs.configure(log_level, log_format)
    try:
        settings = _settings_with_flags(config_path, sip_listen, db_url, metrics_listen, allow_invites_from,
                                        web_listen)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if offline:
        _enforce_offline(settings)
    from victoria_sip.bootstrap import run_server  # heavy imports only once the config is good

    try:
        run_server(settings)
    except VictoriaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


def _settings_with_flags(config_path: Path | None, sip_listen: str | None, db_url: str | None,
                         metrics_listen: str | None = None, allow_invites_from: tuple[str, ...] = (),
                         web_listen: str | None = None) -> Settings:
    settings = load_settings(config_path)
    if allow_invites_from:
        # added to whoever may call already (the config's list, or loopback and the registrars)
        extra = tuple(entry for text in allow_invites_from
                      for entry in parse_allow_entries(text, "command line", "--allow-invites-from"))
        sources = tuple(dict.fromkeys(invite_sources(settings.sip) + extra))
        settings = replace(settings, sip=replace(settings.sip, allow_invites_from=sources))
    if metrics_listen:
        settings = replace(settings, metrics_listen=parse_listen_or_off(metrics_listen, "command line", "--metrics-listen"))
    if web_listen:
        settings = replace(settings, web_listen=parse_listen_or_off(web_listen, "command line", "--web-listen"))
    if sip_listen:
        listen = parse_host_port(sip_listen, "command line", "--sip-listen")
        settings = replace(settings, sip=replace(settings.sip, listen=listen))
    if db_url:
        settings = replace(settings, database_url=db_url)
    return settings


def _enforce_offline(settings: Settings) -> None:
    from victoria_sip.airgap import offenders

    problems = offenders(settings, settings.offline)
    if problems:
        for problem in problems:
            click.echo(f"offline check: {problem}", err=True)
        click.echo("error: --offline: refusing to start (see above)", err=True)
        sys.exit(EXIT_CONFIG)
    # libraries that would reach for a model hub must not try
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    logging.getLogger("victoria").info("offline check passed: local models, private endpoints only")


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML configuration file (default: embedded defaults).")
@click.option("--sip-listen", help="HOST:PORT for SIP, as for serve.")
@click.option("--db", "db_url", help="Database URL, as for serve.")
@click.option("--metrics-listen", help="As for serve.")
@click.option("--web-listen", help="As for serve.")
@click.option("--offline", is_flag=True, help="Also run the air-gap check of serve --offline.")
def doctor(config_path: Path | None, sip_listen: str | None, db_url: str | None, metrics_listen: str | None,
           web_listen: str | None, offline: bool) -> None:
    """Check every part Victoria needs, one line each, with a fix for what is broken. Exit 1 if any is."""
    from victoria_sip.doctor import examine

    try:
        settings = _settings_with_flags(config_path, sip_listen, db_url, metrics_listen, web_listen=web_listen)
    except ConfigError as exc:
        click.echo(f"FAIL  {'config':14} {exc}")
        click.echo(f"      {'':14} fix: correct the file; `victoria-sip check-config FILE` explains each key")
        sys.exit(EXIT_FAILURE)
    logging.disable(logging.WARNING)  # the findings say it; library chatter would only repeat it
    broken = 0
    for finding in examine(settings, settings.offline if offline else None):
        status = "FAIL" if not finding.ok else "WARN" if finding.warning else "ok  "
        click.echo(f"{status}  {finding.part:14} {finding.detail}")
        if not finding.ok or finding.warning:
            broken += not finding.ok
            click.echo(f"      {'':14} fix: {finding.fix}")
    click.echo(f"{broken} problem(s)" if broken else "everything Victoria needs is in order")
    sys.exit(EXIT_FAILURE if broken else 0)


@main.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a configuration file and summarise it."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(f"{config_path}: OK")
    click.echo(f"  SIP: {settings.sip.transport} {settings.sip.listen}, codecs {','.join(settings.sip.codecs)}, "
               f"up to {settings.sip.max_concurrent_calls} calls")
    for account in settings.sip.accounts:
        click.echo(f"  account {account.name}: {account.aor} via {account.registrar} -> agent {account.agent}")
    for callee, agent in settings.routes.items():
        click.echo(f"  direct calls to {callee} -> agent {agent}")
    click.echo(f"  other direct calls -> agent {settings.default_agent}")
    for agent in settings.agents.values():
        click.echo(f"  agent {agent.name}: voice {agent.voice.provider}/{agent.voice.voice}")


@main.group()
def calls() -> None:
    """Call history."""


def _repository(db_url: str | None):
    from victoria_sip.bootstrap import default_database_url, open_repository

    url = db_url or os.environ.get("VICTORIA_DATABASE_URL") or default_database_url()
    try:
        return open_repository(url)
    except VictoriaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


class _Since(click.ParamType):
    """A moment: 30m, 2h, 7d ago, or an ISO date/time (UTC unless it says otherwise)."""

    name = "since"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        if match := re.fullmatch(r"(\d+)([mhd])", value.strip()):
            unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
            return datetime.now(timezone.utc) - timedelta(**{unit: int(match.group(1))})
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"expected 30m, 2h, 7d or an ISO date such as 2026-11-27 or 2026-11-27T09:00, got {value!r}")
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_db_option = click.option("--db", "db_url", help="Database URL (default: $VICTORIA_DATABASE_URL or the user data dir).")
_agent_option = click.option("--agent", help="Only calls answered by this agent.")
_status_option = click.option("--status", type=click.Choice([s.value for s in CallStatus]), help="Only calls in this state.")
_text_option = click.option("--text", help="Only calls where this was said, or from or to this number (any case).")
_since_option = click.option("--since", type=_Since(), help="Only calls since: 30m, 2h, 7d, or an ISO date/time (UTC).")


@calls.command("list")
@_db_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@_agent_option
@_status_option
@_since_option
@_text_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def calls_list(db_url: str | None, limit: int, agent: str | None, status: str | None, since: datetime | None,
               text: str | None, as_json: bool) -> None:
    """The most recent calls, newest first."""
    found = _repository(db_url).list_calls(limit, matching=CallFilter(agent, status, since, text=text))
    if as_json:
        click.echo(json.dumps([call_summary(c) for c in found], indent=2))
        return
    if not found:
        click.echo("no calls yet")
        return
    click.echo(f"{'ID':12}  {'STARTED (UTC)':19}  {'AGENT':12}  {'CALLER':16}  {'STATUS':8}  {'REASON':16}  {'SECONDS':>7}")
    for call in found:
        seconds = f"{call.duration_seconds:.1f}" if call.duration_seconds is not None else "-"
        click.echo(
            f"{call.id.value[:12]:12}  {call.created_at:%Y-%m-%d %H:%M:%S}  {call.agent[:12]:12}  "
            f"{call.caller.value[:16]:16}  {call.status.value:8}  {(call.end_reason.value if call.end_reason else '-'):16}  {seconds:>7}"
        )


@calls.command("export")
@_db_option
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="jsonl", show_default=True,
              help="jsonl: one call per line with its turns; csv: one row per turn.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="File to write (default stdout).")
@_agent_option
@_status_option
@_since_option
@_text_option
def calls_export(db_url: str | None, fmt: str, output, agent: str | None, status: str | None,
                 since: datetime | None, text: str | None) -> None:
    """Every matching call with its transcript, oldest first (for analysis or archiving)."""
    found = _repository(db_url).export_calls(matching=CallFilter(agent, status, since, text=text))
    count = 0

    def counted(calls):
        nonlocal count
        for call in calls:
            count += 1
            yield call

    for line in export_lines(counted(found), fmt):
        output.write(line)
    click.echo(f"exported {count} call(s)", err=True)


@calls.command("show")
@click.argument("call_id")
@click.option("--db", "db_url", help="Database URL (default: $VICTORIA_DATABASE_URL or the user data dir).")
@click.option("--json", "as_json", is_flag=True)
def calls_show(call_id: str, db_url: str | None, as_json: bool) -> None:
    """One call and its transcript. CALL_ID may be the first characters of the id."""
    try:
        CallId(call_id)
    except ValueError:
        click.echo(f"error: {call_id!r} is not a call id", err=True)
        sys.exit(EXIT_FAILURE)
    matches = _repository(db_url).find_calls(call_id)
    if len(matches) != 1:
        click.echo(f"error: {'no call' if not matches else 'several calls'} with id {call_id!r}", err=True)
        sys.exit(EXIT_FAILURE)
    call = matches[0]
    if as_json:
        click.echo(json.dumps(call_with_turns(call), indent=2))
        return
    summary = call_summary(call)
    for key in ("id", "agent", "caller", "callee", "status", "end_reason", "started_at", "ended_at",
                "duration_seconds", "frames_received", "frames_sent", "caller_peak_dbfs", "recording", "signalling",
                "media"):
        click.echo(f"{key:17} {summary[key] if summary[key] is not None else '-'}")
    click.echo("")
    for turn in call.conversation.turns:
        marker = " (interrupted)" if turn.interrupted else ""
        click.echo(f"[{turn.at:%H:%M:%S}] {turn.role.value}: {turn.content}{marker}")
        if turn.latency:
            figures = (("STT", turn.latency.stt_final_ms), ("LLM", turn.latency.llm_first_token_ms),
                       ("TTS", turn.latency.tts_first_audio_ms), ("out", turn.latency.first_frame_out_ms))
            click.echo("           after end of speech: " + ", ".join(
                f"{name} {value:.0f} ms" for name, value in figures if value is not None))


@calls.command("delete")
@click.argument("call_ids", nargs=-1)
@click.option("--caller", help="Every ended call from this caller, as `calls list` shows it (a number or SIP user).")
@_db_option
@click.option("--yes", is_flag=True, help="Do not ask first (on a terminal, it asks).")
def calls_delete(call_ids: tuple[str, ...], caller: str | None, db_url: str | None, yes: bool) -> None:
    """Erase calls for good: their transcripts and their recordings. CALL_ID may be the first characters of an
    id; calls in progress are refused."""
    from victoria_sip.application.erasure import CallEraser, CallInProgress

    if bool(call_ids) == bool(caller):
        click.echo("error: name the calls (CALL_ID...) or the caller (--caller), not both", err=True)
        sys.exit(EXIT_CONFIG)
    repository = _repository(db_url)
    eraser = CallEraser(repository)
    if caller:
        what = f"every ended call from {caller}"
    else:
        ids = []
        for prefix in call_ids:
            matches = repository.find_calls(prefix) if _is_call_id(prefix) else []
            if len(matches) != 1:
                click.echo(f"error: {'no call' if not matches else 'several calls'} with id {prefix!r}; "
                           "nothing erased", err=True)
                sys.exit(EXIT_FAILURE)
            ids.append(matches[0].id)
        what = ", ".join(c.value for c in ids)
    if sys.stdin.isatty() and not yes and not click.confirm(f"erase {what} for good?"):
        click.echo("nothing erased", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        erased = eraser.erase_caller(caller) if caller else eraser.erase(ids)
    except (LookupError, CallInProgress) as exc:
        click.echo(f"error: {exc}; nothing erased", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"erased {erased.describe()}")
    if erased.recordings_left:
        sys.exit(EXIT_FAILURE)


def _is_call_id(text: str) -> bool:
    try:
        CallId(text)
    except ValueError:
        return False
    return True


@main.group()
def users() -> None:
    """Who may log in to the web console (stored in the call database)."""


def _console_users(db_url: str | None):
    from victoria_sip.adapters.console_users import SqlConsoleUsers
    from victoria_sip.adapters.repository import open_database
    from victoria_sip.bootstrap import default_database_url

    try:
        return SqlConsoleUsers(open_database(db_url or os.environ.get("VICTORIA_DATABASE_URL") or default_database_url()))
    except VictoriaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


def _new_password() -> str:
    """From a prompt (typed twice, not echoed) on a terminal, else the first line of stdin; never argv."""
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([role.value for role in ConsoleRole]), default="viewer", show_default=True,
              help="viewer: live calls and history; admin: also test calls and users.")
@_db_option
def users_add(name: str, role: str, db_url: str | None) -> None:
    """Add user NAME; the password is asked for (or read from the first line of stdin)."""
    from victoria_sip.domain.console_user import hash_password, password_problem

    try:
        ConsoleUser.new(name, ConsoleRole(role), "")  # the name is checked before a password is asked for
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    store = _console_users(db_url)
    if store.get(name) is not None:
        click.echo(f"error: user {name!r} already exists (`victoria-sip users remove {name}` first)", err=True)
        sys.exit(EXIT_FAILURE)
    password = _new_password()
    if problem := password_problem(password):
        click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        store.add(ConsoleUser.new(name, ConsoleRole(role), hash_password(password)))
    except VictoriaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"added {role} {name}")


@users.command("list")
@_db_option
def users_list(db_url: str | None) -> None:
    """The console's users and their roles."""
    for user in _console_users(db_url).list():
        click.echo(f"{user.name:32} {user.role.value:7} added {user.created_at:%Y-%m-%d %H:%M} UTC")


@users.command("remove")
@click.argument("name")
@_db_option
def users_remove(name: str, db_url: str | None) -> None:
    """Remove user NAME: they can no longer log in."""
    if not _console_users(db_url).remove(name):
        click.echo(f"error: no user {name!r} (`victoria-sip users list` shows them)", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"removed {name}")


@main.group()
def models() -> None:
    """Model files: what is known, what is installed, download one."""


class _DownloadProgress:
    """Progress on stderr: a live line on a terminal, a line per 10 % in logs (systemd, CI)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._live = sys.stderr.isatty()
        self._last_step = -1

    def __call__(self, done: int, total: int | None) -> None:
        percent = 100 * done // total if total else None
        step = percent // 10 if percent is not None else done >> 23  # every 10 %, or every 8 MB
        if not self._live and step == self._last_step:
            return
        self._last_step = step
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        line = f"downloading {self._name}: {percent}% ({size})" if percent is not None else f"downloading {self._name}: {size}"
        click.echo(("\r" + line) if self._live else line, err=True, nl=not self._live or done == total)


@models.command("list")
@click.option("--dir", "models_dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
def models_list(models_dir: Path) -> None:
    """Models Victoria knows how to download, and whether each is in --dir."""
    from victoria_sip.adapters.model_store import CATALOG, installed

    for spec in CATALOG.values():
        state = "installed" if installed(spec, models_dir) else "not installed"
        click.echo(f"{spec.name:32} {spec.kind:6} ~{spec.approx_mb} MB  {state}")


@models.command("pull")
@click.argument("name")
@click.option("--dir", "models_dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True)
@click.option("--url", help="Download from this address instead (a mirror on your LAN).")
@click.option("--sha256", help="Expected SHA-256 of the archive (required with a NAME not in the catalog).")
@click.option("--kind", type=click.Choice(["vosk"]), default="vosk", show_default=True)
def models_pull(name: str, models_dir: Path, url: str | None, sha256: str | None, kind: str) -> None:
    """Download model NAME into --dir, check its SHA-256 and unpack it."""
    from dataclasses import replace as with_fields

    from victoria_sip.adapters.model_store import CATALOG, ModelSpec, pull

    spec = CATALOG.get(name)
    if spec is None and not (url and sha256):
        known = ", ".join(CATALOG)
        click.echo(f"error: unknown model {name!r} (known: {known}); give --url and --sha256 for others", err=True)
        sys.exit(EXIT_FAILURE)
    spec = spec or ModelSpec(name=name, kind=kind, url=url, sha256=sha256, approx_mb=0)
    spec = with_fields(spec, url=url or spec.url, sha256=sha256 or spec.sha256)
    click.echo(f"pulling {spec.name} from {spec.url}", err=True)
    try:
        path = pull(spec, models_dir, _DownloadProgress(spec.name))
    except VictoriaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"{spec.name}: ready in {path}")


if __name__ == "__main__":
    main()

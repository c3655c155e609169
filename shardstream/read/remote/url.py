"""URLs as dataset arguments: telling them from paths, and opening their fsspec filesystem.

A URL is any argument with a ``scheme://`` prefix (``s3://``, ``gs://``, ``az://``,
``https://``, ``file://``) or an fsspec chain (``simplecache::s3://...``). The filesystem comes
from :func:`fsspec.core.url_to_fs` with the caller's ``storage_options``; for ``s3://`` the
endpoint also comes from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` when the options name
none (older botocore releases ignore those variables).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from ...errors import ConfigTypeError, MissingDependencyError

__all__ = [
    "is_url",
    "protocol_of",
    "url_filesystem",
    "url_join",
    "url_parent",
    "local_path_of",
    "parse_storage_options",
]

#: seconds an HTTP(S) connection may take to open, and a response may stay silent
HTTP_CONNECT_TIMEOUT_S = 10.0
HTTP_READ_TIMEOUT_S = 30.0  # SHARDSTREAM_HTTP_READ_TIMEOUT overrides it
#: connections an S3 filesystem keeps open at once (``config_kwargs={"max_pool_connections":
#: n}`` overrides it)
S3_CONNECTIONS = 64
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
#: the package and the extra of ``pip install shardstream[...]`` each protocol needs
_EXTRAS = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "http": ("aiohttp", "http"),
    "https": ("aiohttp", "http"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
}


def is_url(spec: object) -> bool:
    """Whether ``spec`` is a URL string (``scheme://...`` or an fsspec ``a::b`` chain)."""
    if not isinstance(spec, str):
        return False
    return bool(_SCHEME.match(spec)) or ("::" in spec and "://" in spec)


def local_path_of(url: str) -> str | None:
    """The local path a plain ``file://`` URL names, else ``None`` (any other URL)."""
    if url.startswith("file://") and "::" not in url:
        return url[len("file://") :] or "/"
    return None


def protocol_of(url: str) -> str:
    """The protocol of the URL's last link (``s3`` for ``simplecache::s3://b/k``)."""
    last = url.split("::")[-1]
    return last.split("://", 1)[0].lower() if "://" in last else "file"


def url_join(base: str, relative: str) -> str:
    """``relative`` (a manifest's shard path, ``/``-separated) resolved against folder ``base``."""
    return base.rstrip("/") + "/" + relative.lstrip("/")


def url_parent(url: str) -> str:
    """The folder of ``url`` (everything before its last ``/``), keeping the scheme intact."""
    head, sep, tail = url.rpartition("://")
    if not sep:
        return posixpath.dirname(url)
    return head + sep + posixpath.dirname(tail)


def url_filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path inside it.

    Args:
        url: the URL (a chain such as ``simplecache::s3://bucket/key`` works too).
        storage_options: keyword arguments of the filesystem (credentials, ``endpoint_url``,
            ``client_kwargs``, ...).

    Returns:
        ``(filesystem, path)``.

    Raises:
        MissingDependencyError: fsspec or the protocol's package is not installed (the message
            names the ``pip install shardstream[...]`` extra).
        ConfigTypeError: ``storage_options`` is not a dict.
    """
    if not isinstance(storage_options, (dict, type(None))):
        raise ConfigTypeError(
            f"storage_options must be a dict, got {type(storage_options).__name__}"
        )
    options = dict(storage_options or {})
    protocol = protocol_of(url)
    if protocol in ("s3", "s3a") and "::" not in url:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        has_endpoint = "endpoint_url" in options or "endpoint_url" in options.get(
            "client_kwargs", {}
        )
        if endpoint and not has_endpoint:
            options["endpoint_url"] = endpoint
        config = dict(options.get("config_kwargs", {}))
        if (
            "response_checksum_validation" not in config
            and "AWS_RESPONSE_CHECKSUM_VALIDATION" not in os.environ
            and _botocore_validates_checksums()
        ):
            # botocore would CRC32 every whole-object GET (1-2 ms of CPU per 4 MB shard) that
            # the shard cache verifies again itself (md5 or per-sample xxh3)
            config["response_checksum_validation"] = "when_required"
        # botocore's 10 connections would queue a first batch's ~60 ranges and as many
        # .offsets requests behind each other and behind the prefetcher's downloads: rounds
        # of round trips where one round does
        config.setdefault("max_pool_connections", S3_CONNECTIONS)
        options["config_kwargs"] = config
    if protocol in ("http", "https") and "::" not in url:
        # aiohttp's default is 5 minutes in total: a stalled read would hold a worker that long;
        # fail it after 30 s of silence instead and let the retries take over
        client = dict(options.get("client_kwargs", {}))
        if "timeout" not in client:
            try:
                import aiohttp

                client["timeout"] = aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=HTTP_CONNECT_TIMEOUT_S,
                    sock_read=float(
                        os.environ.get("SHARDSTREAM_HTTP_READ_TIMEOUT", HTTP_READ_TIMEOUT_S)
                    ),
                )
                options["client_kwargs"] = client
            except ImportError:
                pass  # reported below with the extra to install
    try:
        import fsspec.core
    except ImportError:
        raise MissingDependencyError(
            f"{url}: reading URLs needs fsspec: pip install 'shardstream[remote]'"
        ) from None
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as e:
        package, extra = _EXTRAS.get(protocol, (protocol, "remote"))
        raise MissingDependencyError(
            f"{url}: the {protocol}:// protocol needs {package}: "
            f"pip install 'shardstream[{extra}]' ({e})"
        ) from None
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise MissingDependencyError(f"{url}: fsspec knows no protocol {protocol!r}") from None
        raise


def _botocore_validates_checksums() -> bool:
    """Whether the installed botocore checks response checksums (1.36 and later)."""
    try:
        from botocore.config import Config  # delayed: botocore comes with the s3 extra only

        Config(response_checksum_validation="when_required")
    except (ImportError, TypeError, ValueError):
        return False
    return True


def parse_storage_options(text: str | None) -> dict[str, Any]:
    """The ``--storage-options JSON`` of a command as a dict (``{}`` for ``None`` or ``""``).

    Raises:
        ConfigTypeError: the text is not a JSON object.
    """
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigTypeError(f"--storage-options is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ConfigTypeError(
            f"--storage-options must be a JSON object, got {type(value).__name__}"
        )
    return value

"""Bad arguments and misuse of an API: options, states, registries, chains, fields."""

from __future__ import annotations

from ._base import ShardstreamError

__all__ = [
    "LabelError",
    "ConfigError",
    "MissingDependencyError",
    "StateMismatchError",
    "UnsupportedOptionError",
    "DatasetStringError",
    "DatasetStringKeyError",
    "DatasetSplitError",
    "DatasetArgumentError",
    "AlreadyRegisteredError",
    "NotRegisteredError",
    "ConfigTypeError",
    "NotReadyError",
    "MissingFieldError",
    "UnevenShardsError",
    "QueryError",
    "WeightsError",
    "ChainError",
    "NoProcessGroupError",
    "LocalOutputRequiredError",
]


class LabelError(ShardstreamError, ValueError):
    """Sample labels cannot be turned into label numbers.

    Raised for a ``None`` label when no ``labels`` list is given, a label missing from the given
    ``labels``, or a ``{LABEL}`` placeholder in a pattern that a reader cannot resolve.
    """


class ConfigError(ShardstreamError, ValueError):
    """An argument is of the wrong kind or outside its allowed range (the message names it)."""


class MissingDependencyError(ShardstreamError, ImportError):
    """An optional dependency (or a file it ships) that the requested feature needs is missing."""


class StateMismatchError(ShardstreamError, ValueError):
    """A saved ``state_dict`` does not fit the stage it is being loaded into.

    Raised by ``load_state_dict`` when the state comes from another kind of stage, lacks fields or
    has unknown ones, was taken with different order-defining arguments (dataset length, seed,
    buffer or chunk size, range bounds, repeat count), or holds a position outside the stage.
    The stage is left unchanged.
    """


class UnsupportedOptionError(ShardstreamError, NotImplementedError):
    """An option combination that the emulated API does not implement either.

    Raised where the original raises ``NotImplementedError``, e.g. dinov2's ``EPOCH`` sampler
    with ``sampler_advance > 0``.
    """


class DatasetStringError(ShardstreamError, ValueError):
    """A dataset string (dinov2's ``Name:key=value:...``) is malformed or names no known data set.

    Raised where dinov2 raises ``ValueError``: a ``key=value`` token without exactly one ``=``,
    or an unsupported data set name. The message quotes the string and the token at fault.
    """


class DatasetStringKeyError(ShardstreamError, AssertionError):
    """A dataset string uses a key that no data set accepts (dinov2 asserts on it).

    An ``AssertionError`` like dinov2's, so code written against dinov2 still catches it; the
    message names the key and the accepted keys.
    """


class DatasetSplitError(ShardstreamError, KeyError):
    """A split name is not a member of the data set's ``Split`` enum (dinov2 raises KeyError)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DatasetArgumentError(ShardstreamError, TypeError):
    """A dataset string passes a key its data set does not take, or lacks one it needs.

    A ``TypeError``, as the data set's constructor raises in dinov2 (e.g. ``split`` for
    ``ImageNet22k``); the message names the data set and the key.
    """


class AlreadyRegisteredError(ShardstreamError, ValueError):
    """A name is registered twice in one registry (helios' ``Registry``).

    helios checks this with ``assert`` (an ``AssertionError`` that vanishes under ``python -O``);
    shardstream raises this ``ValueError`` instead. The message names the object and the registry.
    """


class NotRegisteredError(ShardstreamError, KeyError):
    """A registry has no object of the requested name (helios raises ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """An argument is an object of the wrong type, e.g. a sampler that is not resumable.

    Both a :class:`ConfigError` and a ``TypeError`` (what helios raises for a wrong sampler);
    the message names the argument and the type received.
    """


class NotReadyError(ShardstreamError, RuntimeError):
    """Something was used before it was created or configured.

    E.g. helios' default NumPy generator read before ``seed_rngs`` / ``create_default_numpy_rng``,
    or a ``DataModule``'s trainer read before one was assigned. A ``RuntimeError``, as in helios.
    """


class MissingFieldError(ShardstreamError, KeyError):
    """A value a transform needs is missing: a parameter from the ``rng`` dict, or a sample field.

    Raised by ``Compose`` when a transform's required parameter is not in the parameters, and by
    the torch datasets when a transform dict names a field the sample lacks. A ``KeyError``, as
    datadings raises; the message names the transform or field and what is available.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnevenShardsError(ShardstreamError, RuntimeError):
    """The shards of an ``IterableDataset`` would leave a loader worker an empty last batch.

    A ``RuntimeError``, as datadings raises when ``0 < len(shard) % batch_size < 1``; the message
    names the sizes and what to change (workers, batch size or world size).
    """


class QueryError(ShardstreamError, ValueError):
    """An SQL query or weight expression over a dataset's metadata table fails.

    A ``ValueError``. Raised when DuckDB rejects the SQL, or the result of a query has no usable
    ``index`` column. The message holds the SQL and what went wrong (DuckDB's own message).

    Attributes:
        sql: the query or expression as given.
        problem: what went wrong.
    """

    def __init__(self, sql: object, problem: str):
        self.sql = sql
        self.problem = problem
        super().__init__(f"query {sql!r}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.sql, self.problem)


class WeightsError(ShardstreamError, ValueError):
    """Sampling weights are unusable: negative, NaN or infinite, the wrong count, all zero, or
    too few positive ones for a draw without replacement (a ``ValueError``)."""


class ChainError(ShardstreamError, ValueError):
    """A :class:`~shardstream.loader.loader.Loader` step is called twice, or after a step it
    excludes (a second ``.batch()``, ``.pytorch()`` after ``.numpy()``, ``tensors`` after a dict
    transform). A ``ValueError`` with Deep Lake's message for the same mistake."""


class NoProcessGroupError(ShardstreamError, ValueError, RuntimeError):
    """A distributed sampler was asked for its rank or world size from ``torch.distributed``
    and no process group is initialised.

    torch's ``DistributedSampler`` (and so dinov2's ``DISTRIBUTED`` sampler and helios'
    ``ResumableDistributedSampler``) raises there too: a ``ValueError`` (torch >= 2.x, whose
    message this keeps) or, in older torch, a ``RuntimeError``; this is both.
    """


class LocalOutputRequiredError(ConfigError):
    """A command or API that writes local files only was given a URL (``s3://...``) as its
    output; the message names the output and what needs a local path."""

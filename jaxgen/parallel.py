"""Data parallelism by sharding: one mesh axis ``data``, params replicated, batch split.

The same code runs on one CPU, on simulated devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and on many hosts, where
each process holds its slice of the global batch. Several processes (hosts)
join one run through ``initialize_distributed`` before any other JAX call.
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgen.validation import ConfigError

DATA_AXIS = "data"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins this process to a multi-process run with ``jax.distributed.initialize``.

    Call it once, before any other JAX call. Arguments left None are detected
    from the environment by JAX (TPU pod slices, SLURM, Open MPI, Kubernetes,
    ...); on a plain machine give all three.

    Args:
      coordinator_address: ``host:port`` of process 0, reachable by every process.
      num_processes: the number of processes in the run.
      process_id: this process's index, in [0, num_processes).

    Raises:
      ValueError: a bad argument, or some are missing and JAX cannot detect them.
    """
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"--num_processes={num_processes} must be at least 1.")
    if None not in (num_processes, process_id) and not 0 <= process_id < num_processes:
        raise ConfigError(
            f"--process_id={process_id} must be in [0, --num_processes={num_processes})."
        )
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except ValueError as e:
        raise ConfigError(
            f"Cannot start the multi-process run: {e} Give --coordinator_address=HOST:PORT, "
            "--num_processes and --process_id, or run where JAX detects them (a TPU pod "
            "slice, SLURM, Open MPI, Kubernetes) with --distributed."
        ) from None


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all by default).

    Args:
      num_devices: devices to use, across all processes; None for all.

    Returns:
      Mesh with the single axis ``"data"``.
    """
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ConfigError(f"num_devices={num_devices} must be in [1, {len(devices)}].")
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (params, optimizer state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the ``data`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises a ValueError unless the global batch splits evenly over the devices."""
    n = mesh.devices.size
    if batch_size % n:
        raise ConfigError(
            f"batch_size={batch_size} must be divisible by the number of devices ({n}); "
            f"use a multiple of {n}."
        )


def shard_batch(local_batch: Any, mesh: Mesh) -> Any:
    """Assembles each process's slice of the batch into global, batch-sharded arrays.

    Args:
      local_batch: pytree of numpy arrays [B_local, ...]; on one process the
        whole batch.
      mesh: the data mesh.

    Returns:
      The same pytree of jax Arrays [B_local * process_count, ...] sharded over ``data``.
    """
    sharding = batch_sharded(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places a pytree (params, state) replicated on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))

"""Probes: measurements of the solution-space geometry around solutions (docs/science.md §2).

A probe is a function ``run(batch, solution, *, activation, weights, params, keys)``
returning a ``ProbeResult`` (one row per instance and probe setting); it is batched
over the B instances of ``batch`` and over its perturbation draws, on the device of
``batch``, and draws randomness only from ``keys`` (one ``instances.stream_key(inst,
"probe/<name>")`` per instance). ``scan.runner`` runs every configured probe on the
solved instances of a shard and stores each probe's rows in the table of the same name.
Adding a probe is one module, one line here and one in ``params.PROBE_PARAMS``.

=============  =========================  ==============================================
probe/table    module                     main columns
=============  =========================  ==============================================
local_energy   probes.local_energy        s or D, d, overlap, local_energy(_stderr)
robustness     probes.robustness          p, robustness(_stderr)
local_entropy  probes.local_entropy       D, solution_frac(_stderr), local_entropy(_stderr)
walks          probes.walks               steps, moves, acceptance, d(_stderr)
enumerate      probes.enumerate           D, solutions, pairs, neighbours, local_energy
=============  =========================  ==============================================
"""

from __future__ import annotations

from relu_landscape.probes import enumerate as enumeration
from relu_landscape.probes import local_energy, local_entropy, robustness, walks
from relu_landscape.probes.base import Probe, ProbeResult

__all__ = ["PROBES", "Probe", "ProbeResult"]

BOTH = ("binary", "continuous")

PROBES: dict[str, Probe] = {
    "local_energy": Probe(local_energy.probe, BOTH),
    "robustness": Probe(robustness.probe, BOTH),
    "local_entropy": Probe(local_entropy.probe, ("binary",)),
    "walks": Probe(walks.probe, BOTH),
    "enumerate": Probe(enumeration.probe, ("binary",)),
}

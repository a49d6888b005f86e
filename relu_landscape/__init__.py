"""relu-landscape: capacity and solution-space geometry of tree committee machines.

Reproduces and extends Baldassi, Malatesta & Zecchina, PRL 123, 170602 (2019); the
model, observables and theory are defined in docs/science.md. Importing this
package loads nothing heavy; each layer is imported where it is used.

Where each quantity is computed (the Parquet column has the same name):

==========================  =================================  ========================
quantity                    module                             column (table)
==========================  =================================  ========================
preactivation lambda        model.preact / model.dot           -
output field Delta          model.field                        -
stability sigma*Delta       model.stability                    min_stability (runs)
training errors (tie=error) model.errors                       errors, error_frac (runs)
solved, steps               solvers.* via solvers.base.finish  solved, steps (runs)
has a solution (small N)    probes.enumerate.solvable          solvable (runs)
P(solved), alpha_50         analysis.capacity, stats           -
alpha_50 beside alpha_c(k)  analysis.margins                   - (report: margins)
local energy E_loc(s | d)   probes.local_energy                local_energy
input robustness            probes.robustness                  robustness
sampled local entropy       probes.local_entropy               local_entropy
solution-space walks        probes.walks                       walks
exact small-N landscape     probes.enumerate                   enumerate
RS alpha_c, q, s; 1RSB      theory.rs, theory.rsb1             alpha_c (theory)
Franz-Parisi / dense        theory.franz_parisi, theory.dense  local_entropy_theory
==========================  =================================  ========================

Glossary (ASCII spellings of docs/science.md's symbols): N inputs, K hidden units,
n = N/K inputs per unit, P = round(alpha N) patterns, alpha patterns per weight,
s seed index, seed the spec's base seed; tensors are [B, P, K] etc. with B instances.
"""

__version__ = "0.1.0"

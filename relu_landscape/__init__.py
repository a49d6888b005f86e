"""relu-landscape: capacity and solution-space geometry of tree committee machines.

Reproduces and extends Baldassi, Malatesta & Zecchina, PRL 123, 170602 (2019); the
model, observables and theory are defined in science.md (shared docs). Importing this
package loads nothing heavy; each layer is imported where it is used.

Where each quantity is computed (the Parquet column has the same name):

==================  ================================  =====================
quantity            module                            column (table)
==================  ================================  =====================
preactivation       model.preact / model.dot          -
output field Delta  model.field                       -
stability           model.stability                   min_stability (runs)
training errors     model.errors (tie = error)        errors, error_frac
solved              solvers.base.finish               solved (runs)
P(solved)           analysis.capacity                 -
==================  ================================  =====================

Glossary (ASCII spellings of science.md's symbols): N inputs, K hidden units,
n = N/K inputs per unit, P = round(alpha N) patterns, alpha patterns per weight,
s seed index, seed the spec's base seed; tensors are [B, P, K] etc. with B instances.
"""

__version__ = "0.1.0"

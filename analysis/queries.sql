-- Example queries: relu-landscape query RESULTS_DIR "<one statement>".
-- Tables: runs (one row per instance), theory (after `relu-landscape report`),
-- and one table per configured probe (local_energy, robustness, ...), joined on run_id.

-- P(solved) by alpha for ReLU units with binary weights
SELECT K, N, solver, alpha, avg(CAST(solved AS INT)) AS p_solved, count(*) AS instances
FROM runs WHERE activation = 'relu' AND weights = 'binary'
GROUP BY K, N, solver, alpha ORDER BY K, N, solver, alpha;

-- Largest alpha with at least half the instances solved, by K, for ReLU binary
SELECT K, N, solver, max(alpha) AS alpha_half_solved FROM (
  SELECT K, N, solver, alpha, avg(CAST(solved AS INT)) AS p FROM runs
  WHERE activation = 'relu' AND weights = 'binary' GROUP BY K, N, solver, alpha)
WHERE p >= 0.5 GROUP BY K, N, solver ORDER BY K;

-- RS capacity versus K (K IS NULL is the wide limit K = infinity)
SELECT activation, weights, K, level, alpha_c, stderr FROM theory ORDER BY ALL;

-- Measured cells beside the RS capacity of their variant (alpha / alpha_c)
SELECT r.activation, r.weights, r.K, r.alpha, r.alpha / t.alpha_c AS load,
       avg(CAST(r.solved AS INT)) AS p_solved
FROM runs r JOIN theory t ON r.activation = t.activation AND r.weights = t.weights
  AND r.K = t.K AND t.level = 'RS'
GROUP BY ALL ORDER BY ALL;

-- Mean final training-error fraction of unsolved instances, by solver
SELECT solver, activation, weights, K, avg(error_frac) AS mean_error_frac
FROM runs WHERE NOT solved GROUP BY ALL ORDER BY ALL;

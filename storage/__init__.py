"""Storage URLs, the Optuna RDB storage set up for concurrency, our own ledger tables, and the
JSON hyper-parameter store read by trading code. Imports nothing else of ours."""

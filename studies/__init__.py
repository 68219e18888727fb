"""Study naming, create-or-resume, the worker loop, crash recovery and finalisation."""

"""`python worker.py` runs a worker configured by the environment (SPEC §1); the code lives in `runtime`."""

from runtime.worker import main

if __name__ == "__main__":
    main()

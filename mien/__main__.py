"""`python -m mien`, which torchrun starts: `torchrun --nproc-per-node 2 -m mien train ...`."""

from mien.cli.main import main

if __name__ == "__main__":
    main()

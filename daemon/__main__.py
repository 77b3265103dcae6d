"""`python -m daemon` is the same as the `watchkeeper` command."""

from daemon.cli import main

if __name__ == "__main__":
    main()

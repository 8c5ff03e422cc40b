"""``benchmarks/ugach_grid.py --dataset wiki`` under its old name (the README cites it)."""
from ugach_grid import main

if __name__ == "__main__":
    main(default_dataset="wiki")

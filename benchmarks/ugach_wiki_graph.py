"""``benchmarks/ugach_graph.py --dataset wiki`` under its old name (the README cites it)."""
import sys

from ugach_graph import main

if __name__ == "__main__":
    sys.argv[1:1] = ["--dataset", "wiki"]
    main()

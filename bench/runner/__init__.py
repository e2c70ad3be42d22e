"""The parts of the bench runner, bench/hakmem_bench.py (which holds the
command line and the main loop):

  workloads   the workload table: binaries, arguments, callgrind op counts
  programs    real programs as workloads: inputs, reference output, result
  allocators  the allocator columns: peers, hakmem configs and sweeps
  measure     running one workload process and judging its result line
  matrix      the cells of workloads x columns, the checksum cross-check
  callgrind   instructions per operation under valgrind --tool=callgrind
  report      the CSV files and the Markdown report
  chart       the gnuplot chart
  formatting  progress lines and number formats

Standard library only.
"""

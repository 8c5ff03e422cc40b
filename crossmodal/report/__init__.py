"""Result tables and figures from run folders: ``crossmodal report RUNS... --out DIR``.

Runs are grouped by dataset, configuration label (``train --label``, a sweep entry's
``label:``, by default method + preset + overrides), code length and direction; each cell is
the mean over seeds, with "± sample std" only where there are at least two seeds. Two runs
that carry one label but differ in their resolved config or dataset parameters are refused:
a row never averages two configurations. Output:

* ``table.md``, ``table.tex`` (booktabs; one ``table`` per dataset and metric) and ``table.csv``
  (long form: dataset, direction, method, bits, metric, mean, std, n, seeds) -- rows in the
  order given (command line or sweep), columns = bits, one block per direction (I→T, T→I, I→I);
  the conventions, the database-coding convention and the model selection as footnotes;
* figures, each as PNG, PDF and SVG, sized for a two-column paper: ``pr-<ds>-<dir>`` (precision-
  recall, one panel per code length), ``pk-`` (precision@k, log k), ``ndcg-`` and ``recall-``
  (NDCG@k, recall@k, log k), ``map-<ds>`` (mAP vs bits). Y axes fitted to the data, std bands
  where there are at least two seeds, colour + line style + marker per configuration.

Database codes: ``report.json`` meta ``database_codes`` is ``per-modality`` (the default when
absent) or ``unified`` (one code per database pair from both modalities). Tables never mix the
two in a column silently: mixed runs are refused unless ``allow_mixed_codes``, which marks the
minority rows with † and says so in a footnote.
"""

from crossmodal.report.find import RunResult, config_label, find_runs
from crossmodal.report.table import ResultTable
from crossmodal.report.text import DEFAULT_METRICS
from crossmodal.report.write import write_report

__all__ = ["RunResult", "config_label", "find_runs", "ResultTable", "DEFAULT_METRICS", "write_report"]

"""Analysis of a finished study, from its results on disk (never re-runs the study).

    python -m analysis.report RESULTS_DIR --out DIR     # HTML + Markdown report, trials.csv, figures

Data flows one way: load (results tree -> frames) -> curves, answers, importance (figures and
text per experiment) -> threshold (choice on validation) -> evaluate (the one reader of the test
split, after selection) -> report (HTML, Markdown, CSV, W&B). Nothing in study/ imports analysis.
"""

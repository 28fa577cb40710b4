#!/usr/bin/env python3
"""Reference values for src-shared/metrics/{mcnemar,distributions}.ts from scipy and statsmodels.

    python3 tools/metric-references/stats_reference.py   # needs scipy, statsmodels

Writes tests/fixtures/metric-references/stats.json:
  - mcnemar: per (b, c): exact two-sided p = scipy.stats.binomtest(b, b+c, 0.5).pvalue, the
    continuity-corrected chi-square statistic (|b-c|-1)^2/(b+c) with p = scipy.stats.chi2.sf(x, 1),
    and statsmodels.stats.contingency_tables.mcnemar on the 2x2 table [[n11, b], [c, n22]] with
    exact=True and exact=False, correction=True (cross-check of the two);
  - chi2_sf: scipy.stats.chi2.sf(x, df) on a grid; gammaln: scipy.special.gammaln;
  - binom_cdf: scipy.stats.binom.cdf(k, n, p).
The bootstrap is not here: scipy.stats.bootstrap uses another random generator, so it is tested
by properties and by the exact resampling distribution instead (tests/unit/metrics/bootstrap.test.ts).
"""
import json
import os

import numpy as np
import scipy
import statsmodels
from scipy import special, stats
from statsmodels.stats.contingency_tables import mcnemar

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'metric-references', 'stats.json')

PAIRS = [(0, 0), (1, 0), (0, 1), (3, 9), (5, 5), (2, 12), (11, 13), (12, 12), (10, 20), (25, 40), (40, 25), (100, 70), (0, 30), (300, 260), (7, 0)]


def main():
    rows = []
    for b, c in PAIRS:
        n = b + c
        exact_p = 1.0 if n == 0 else float(stats.binomtest(b, n, 0.5).pvalue)
        chi_stat = None if n == 0 else (abs(b - c) - 1) ** 2 / n
        chi_p = None if n == 0 else float(stats.chi2.sf(chi_stat, 1))
        table = np.array([[17, b], [c, 9]])
        sm_exact = mcnemar(table, exact=True)
        row = {'b': b, 'c': c, 'exactP': exact_p, 'statsmodelsExactP': float(sm_exact.pvalue), 'statsmodelsExactStatistic': float(sm_exact.statistic)}
        if n:
            sm_chi = mcnemar(table, exact=False, correction=True)
            row.update({'chiStatistic': chi_stat, 'chiP': chi_p, 'statsmodelsChiStatistic': float(sm_chi.statistic), 'statsmodelsChiP': float(sm_chi.pvalue)})
        rows.append(row)
    chi2_sf = [{'x': x, 'df': df, 'sf': float(stats.chi2.sf(x, df))} for df in (1, 2, 3, 5, 10) for x in (0.01, 0.5, 1.0, 2.0, 3.841458820694124, 6.0, 10.0, 30.0, 80.0)]
    gammaln = [{'x': x, 'value': float(special.gammaln(x))} for x in (0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 57.5, 171.0, 1000.5)]
    binom_cdf = [{'k': k, 'n': n, 'p': p, 'cdf': float(stats.binom.cdf(k, n, p))} for (k, n, p) in [(0, 1, 0.5), (3, 12, 0.5), (10, 30, 0.5), (12, 24, 0.5), (5, 40, 0.3), (60, 200, 0.4), (400, 1000, 0.5), (2, 2000, 0.01)]]
    doc = {
        'source': f'scipy {scipy.__version__}, statsmodels {statsmodels.__version__}',
        'generator': 'tools/metric-references/stats_reference.py',
        'mcnemar': rows,
        'chi2Sf': chi2_sf,
        'gammaln': gammaln,
        'binomCdf': binom_cdf,
    }
    with open(OUT, 'w') as f:
        json.dump(doc, f, indent=1)
    print(f'wrote {OUT}: {len(rows)} McNemar cases, {len(chi2_sf)} chi2 sf, {len(binom_cdf)} binomial cdf')
    for r in rows:
        if 'chiP' in r:
            assert abs(r['chiP'] - r['statsmodelsChiP']) < 1e-12 and abs(r['chiStatistic'] - r['statsmodelsChiStatistic']) < 1e-12, r
        assert abs(r['exactP'] - r['statsmodelsExactP']) < 1e-12, r


if __name__ == '__main__':
    main()

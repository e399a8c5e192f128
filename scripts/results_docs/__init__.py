# SPDX-License-Identifier: Apache-2.0
"""The results documents, written by scripts/write_results_docs.py from the result files.

`inputs` reads every file once into one `Inputs` (facts.yaml holds the few numbers no result file records);
`results_page` (docs/RESULTS.md, with its `studies` and `probes` sections), `model_card` (models/README.md)
and `readme_section` (README.md's results) each render one document from it, one function per section;
`common` holds what more than one document states (the quality bar, the comparison, the commands)."""

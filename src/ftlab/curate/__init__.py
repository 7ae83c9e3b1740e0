"""Curation (seed 003): a dataset's `curate:` list of named filters, applied in order.

    datasets:
      - name: train
        role: train
        generate: {name: med_qa, n: 1000}
        curate:
          - {name: quality, fields: [reasoning_short], token_limit: 320, near_duplicates: 0.8}
          - {name: difficulty, evaluator: generate, parser: {regex: "The answer is ([A-D])"}}
          - {name: diversity, min_tokens: 150, total: 200, balance: specialty, seed: 0}

Every input example gets one decision (kept, or dropped by which filter and why); the curate
stage (ftlab.curate.stage) writes them as filtered.parquet, the kept rows as curated.parquet
and examples.jsonl (what the train stage reads) and formatted/ (an HF dataset, save_to_disk), and
counts each filter's drops in the registry and the report. Filters: ftlab.curate.filters.
"""

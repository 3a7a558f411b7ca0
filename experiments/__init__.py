"""The few-shot evaluation protocol: k-shot sampling, metrics and paired confidence intervals."""

# Solution: fit the popularity control on the NUDGE-N vectors (same train and validation
# questions): its factor is how much longer validation wants NUDGE-N's asked-about passages to
# be. Then compare the scaled vectors with NUDGE-N alone, question by question, on both test
# groups: extra length may buy a little on known questions and cost the never-asked ones.
from nudge.evaluation import paired_difference
from nudge.teaching.exercises import check_length_on_n

on_n = PopularityControl().fit(nudged["NUDGE-N"], train, val)
scaled = on_n.transform(nudged["NUDGE-N"])
for title, group in (("known", known), ("never-asked", never_asked)):
    hits = [evaluate_embeddings(x, group)["per_query"]["hit@1"] for x in (nudged["NUDGE-N"], scaled)]
    d = paired_difference(*hits)
    print(f"{title}: NUDGE-N scaled minus NUDGE-N alone, test hit@1 {d} ({d.verdict})")

answer = on_n.factor_
check_length_on_n(answer)

# Solution: fit NUDGE-M on the same train and validation questions, then take every test question's
# hit@1 with the original vectors (before) and with NUDGE-M's (after), one array per group: known
# passages (`test`) and never-asked ones (`never_asked`). mixed_difference weighs the groups 80/20
# and gives the paired 95% interval of NUDGE-M minus no fine-tuning on that mix; its upper bound
# is the answer. The verdict is read from the interval: clear only if it excludes 0.
from nudge.evaluation import mixed_difference
from nudge.teaching.exercises import check_mixed_traffic

nudged_m = nudge.Nudge("M").fit(docs, train, val).transform(docs)
groups = (test, never_asked)
before = [evaluate_embeddings(docs, g)["per_query"]["hit@1"] for g in groups]
after = [evaluate_embeddings(nudged_m, g)["per_query"]["hit@1"] for g in groups]
mix = mixed_difference(before, after, (0.8, 0.2))
print(f"NUDGE-M minus no fine-tuning, hit@1, 80% known / 20% never-asked: {mix} ({mix.verdict})")

answer = mix.high
check_mixed_traffic(answer)

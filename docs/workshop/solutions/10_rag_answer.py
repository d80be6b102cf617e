# Solution to notebook 10's exercise. context_hit gives each test question 1.0 when a relevant
# passage is among the top k by dot product; with k=2 that is what a two-passage prompt holds.
# The share is its mean, and the same questions with the original vectors give the paired
# interval of the change.
from nudge.teaching.exercises import check_context_hit

top2 = {name: context_hit(test, vectors[name], k=2) for name in ("original", "NUDGE-N")}
change = paired_difference(top2["original"], top2["NUDGE-N"])
print(f"top 2: original {top2['original'].mean():.3f}, NUDGE-N {top2['NUDGE-N'].mean():.3f}")
print(f"NUDGE-N minus original: {change} ({change.verdict})")

answer = top2["NUDGE-N"].mean()
check_context_hit(answer)

# Solution: make the split again with seed=1 (same fractions, same questions) and count the
# positions present in both validation sets. Two random sets of 155 out of 970 questions share
# 155*155/970, about 25, by chance: compare the count with that, and note that another seed
# means a largely different judge of gamma.
from nudge.teaching.exercises import check_validation_overlap

n = len(dataset.query_ids)
split_1 = nudge.split_queries(n, val_fraction=0.2, test_fraction=0.2, seed=1)
shared = set(split.val.tolist()) & set(split_1.val.tolist())
chance = len(split.val) * len(split_1.val) / n
print(f"{len(shared)} questions in both validation sets; chance alone: {chance:.1f}")

answer = len(shared)
check_validation_overlap(answer)

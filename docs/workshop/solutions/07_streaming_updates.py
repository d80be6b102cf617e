# Solution to notebook 07's exercise. The three-week NUDGE-M state holds the directions learnt
# from all the pairs; to_nudge turns it into a model whose transform takes any gamma. Apply it
# to the ORIGINAL vectors of the grown corpus with week 1's gamma instead of the re-picked one,
# and count the week-1 test questions whose relevant passage is at rank 1.
from nudge.teaching.exercises import check_fixed_gamma_weeks

three_weeks = states["M"].to_nudge(docs, later.doc_ids)
kept_gamma = three_weeks.transform(docs, gamma=gamma_week1)
hits = evaluate_embeddings(kept_gamma, test)["per_query"]["hit@1"]
print(f"gamma: week 1 {gamma_week1:.3f}, re-picked {states['M'].gamma_:.3f}")
print(
    "week 1's gamma minus the re-picked one:",
    paired_difference(final_results["NUDGE-M, 3 weeks"]["per_query"]["hit@1"], hits),
)

answer = int(hits.sum())
check_fixed_gamma_weeks(answer)

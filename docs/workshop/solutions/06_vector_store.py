# Solution to notebook 06's exercise. Fit NUDGE-N on the same train and validation questions,
# apply it to the (rolled-back) store with the collection's one backup file and the fitted
# embeddings, and evaluate the store. evaluate_store keeps each question's hit@1, so the two
# stores can be compared question by question: count the questions NUDGE-N gets right at 1 and
# NUDGE-M did not. Then roll back, so the store ends as it started.
import numpy as np

from nudge.teaching.exercises import check_store_n_over_m

model_n = nudge.Nudge("N").fit(docs, train, val)
apply_nudge_to_store(store, model_n, data.doc_ids, backup=backup, embeddings=docs)
results["after NUDGE-N"] = evaluate_store(store, test, data.doc_ids)
rollback_store(store, backup)
print(format_table(results, interval="hit@1"))

hit_m = results["after NUDGE-M"]["per_query"]["hit@1"]
hit_n = results["after NUDGE-N"]["per_query"]["hit@1"]
answer = int(np.sum((hit_n == 1) & (hit_m == 0)))
check_store_n_over_m(answer)

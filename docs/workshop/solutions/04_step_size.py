# Solution: fit NUDGE-M with k=3 (gamma chosen for the share of validation answers in the top 3),
# apply it, and take the share of test questions whose first relevant passage ranks 3 or better.
# The loop compares it with the k=1 model (model_m) question by question, on the known and on the
# never-asked test questions, each difference with its paired interval: a higher validation
# score does not by itself say that the larger gamma pays off on new questions.
from nudge.evaluation import evaluate_embeddings, paired_difference
from nudge.teaching.exercises import check_k3_on_test

model_k3 = nudge.Nudge("M", k=3).fit(docs, train, val)
for name, group in (("known", test), ("never-asked", data.query_set("test_never_asked"))):
    top3 = {k: evaluate_embeddings(m.transform(docs), group)["ranks"] <= 3 for k, m in ((1, model_m), (3, model_k3))}
    d = paired_difference(top3[1].astype(float), top3[3].astype(float))
    print(f"{name}: top-3 share k=1 model {top3[1].mean():.3f}, k=3 model {top3[3].mean():.3f}; k=3 minus k=1: {d}")

answer = float(np.mean(evaluate_embeddings(model_k3.transform(docs), test)["ranks"] <= 3))
check_k3_on_test(answer)

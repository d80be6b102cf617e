# Solution to notebook 09's exercise. Fit both adapters on the same training questions, each
# choosing its setting on the same validation questions, map every test question through each
# W, and score the mapped questions against the untouched passages. The answer is the
# difference of the two test hit@1 values; the paired interval on the per-question hit@1 says
# whether the test shows a difference at all.
from nudge.adapter import QueryAdapter
from nudge.evaluation import evaluate_embeddings, paired_difference
from nudge.pairs import QuerySet
from nudge.teaching import learning_curve as lc
from nudge.teaching.exercises import check_squared_adapter

bundled = lc.bundled_problem()
train, val, docs = bundled.train, bundled.val, bundled.docs
test = bundled.test

hits = {}
for loss in ("softmax", "squared"):
    with lc.single_thread_blas():  # small matrices: one BLAS thread is faster on a shared machine
        adapter = QueryAdapter(loss=loss).fit(docs, train, val)
    mapped = QuerySet(adapter.transform_queries(test.embeddings), test.answers)
    hits[loss] = evaluate_embeddings(docs, mapped)["per_query"]["hit@1"]
    print(f"{loss}: validation top-1 {adapter.val_score_:.3f}")
print("test hit@1, squared minus softmax:", paired_difference(hits["softmax"], hits["squared"]))

answer = hits["squared"].mean() - hits["softmax"].mean()
check_squared_adapter(answer)

# Solution: score every passage against the first test question with a dot product (all vectors
# have unit length, so this is the cosine), take the argmax and look up its id. Then see whether
# it is one of the question's relevant passages, and whether any training question lists it:
# only passages with training questions are ever moved by NUDGE.
from nudge.teaching.exercises import check_nearest_passage

best = int(np.argmax(docs @ test.embeddings[0]))
has_training = any(best in rows for rows in data.query_set("train").answers)
print(f"{data.doc_ids[best]}: relevant {best in test.answers[0]}, has training questions {has_training}")

answer = data.doc_ids[best]
check_nearest_passage(answer)

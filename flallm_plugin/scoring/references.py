"""Original reference texts for scorers run inside ``fairseq-generate``.

``fairseq-generate`` rebuilds each reference from the target token ids, so with a
vocabulary trimmed to the training text every piece never seen in training becomes
``<<unk>>`` and BLEU is computed against a corrupted reference. The original text is
in the manifest (``tgt_text``), and the ``sign_translation`` collater puts it in each
batch (``sample["tgt_text"]``).

fairseq-generate calls ``task.inference_step`` once per batch, then the scorer's
``add_string`` once per sentence of that batch, in batch order. So the task publishes
the batch's original texts here right after generating, and every scorer subscribed
here (``sign_eval``) takes them in the same order. A scorer checks that it used up
exactly what was published; any other order is an error, never a silent mismatch.
"""
import weakref
from collections import deque
from typing import Iterable, NamedTuple, Optional

_subscribers: "weakref.WeakSet[ReferenceQueue]" = weakref.WeakSet()


class Reference(NamedTuple):
    text: str  # the manifest's tgt_text
    tokenizer: Optional[str]  # the data's bleu_tokenizer (config.yaml)


class ReferenceQueue(object):
    """The :class:`Reference` s published for one scorer, oldest first (compared by identity)."""

    def __init__(self):
        self._refs = deque()

    def __len__(self):
        return len(self._refs)

    def extend(self, refs):
        self._refs.extend(refs)

    def popleft(self) -> Reference:
        return self._refs.popleft()


def subscribe() -> ReferenceQueue:
    """A new queue that receives every batch published from now on."""
    queue = ReferenceQueue()
    _subscribers.add(queue)
    return queue


def unsubscribe(queue: ReferenceQueue):
    _subscribers.discard(queue)


def publish(texts: Iterable[str], tokenizer: Optional[str] = None):
    """Hand a generated batch's original references (in batch order) and the data's BLEU
    tokenizer to the subscribed scorers."""
    refs = [Reference(t, tokenizer) for t in texts]
    for queue in list(_subscribers):
        queue.extend(refs)

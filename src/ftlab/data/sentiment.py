"""The "sentiment" generator: short reviews labelled positive or negative by one adjective.

A task on which pretraining visibly matters. The adjective decides the label, and every
adjective belongs to exactly one split (a SHA-1 bucket of the word: 3/5 train, 1/5 valid, 1/5
test), so valid and test ask about words never seen in training. A pretrained model knows that
"exquisite" is good and "dreadful" is bad, and fine-tuning only has to teach it the answer
format; a random-init model can learn only the training words, and stays at chance on the rest
(measured on SmolLM2-135M-Instruct, LoRA, 32 steps: held-out accuracy 0.53 untuned -> 0.99;
the random-init control stays at chance; examples/quickstart.yaml).

    generators.get("sentiment")(n=200, split="test", seed=0)   # 100 positive + 100 negative, test words only
"""

from __future__ import annotations

import hashlib
import random

from ftlab.data.example import Example
from ftlab.data.generate import check_request, generators
from ftlab.errors import DataError

POSITIVE = (
    "wonderful excellent delightful superb fantastic brilliant lovely marvelous terrific splendid charming "
    "pleasant enjoyable amazing outstanding great good nice beautiful perfect magnificent fabulous gorgeous "
    "joyful cheerful impressive remarkable exceptional admirable graceful elegant exquisite inspiring uplifting "
    "heartwarming refreshing satisfying thrilling exciting stunning glorious sublime flawless friendly helpful "
    "generous kind warm comfortable relaxing peaceful happy fun entertaining hilarious clever smart valuable "
    "worthwhile rewarding successful fine awesome incredible dazzling radiant pleasing welcoming cozy "
    "spotless tasty delicious fresh polished professional reliable brave honest lively vibrant memorable "
    "touching moving magical sweet pleasurable"
).split()
NEGATIVE = (
    "terrible awful horrible dreadful disgusting miserable boring dull tedious annoying irritating frustrating "
    "disappointing mediocre poor bad ugly nasty unpleasant painful sad depressing gloomy hideous lousy pathetic "
    "useless worthless broken rude hostile cruel offensive repulsive revolting appalling atrocious abysmal dismal "
    "horrendous inferior shoddy sloppy clumsy stupid foolish pointless tiresome bland stale rotten filthy noisy "
    "uncomfortable unbearable dreary grim bleak harsh mean cold hateful vile wretched tragic awkward messy "
    "greasy smelly dirty slow unreliable unprofessional dishonest cheap flimsy lifeless forgettable confusing "
    "chaotic dreadful grotesque sour"
).split()
NOUNS = ("movie", "hotel", "meal", "concert", "book", "service", "trip", "game", "show", "class", "party",
         "room", "staff", "soup", "album", "play", "museum", "cafe", "flight", "lecture")
TEMPLATES = ("The {noun} was {word}.", "What a {word} {noun}!", "I found the {noun} {word}.",
             "Honestly, the {noun} was {word}.", "Our {noun} turned out {word}.", "It was a {word} {noun}.",
             "Everyone agreed the {noun} was {word}.", "The {noun} felt {word} to me.")
QUESTION = "Review: {sentence}\nIs this review positive or negative?"
LABELS = ("positive", "negative")
SPLIT_BUCKETS = {"train": (0, 1, 2), "valid": (3,), "test": (4,)}


def split_of_word(word: str) -> str:
    bucket = int(hashlib.sha1(word.encode("utf-8")).hexdigest(), 16) % 5
    return next(s for s, buckets in SPLIT_BUCKETS.items() if bucket in buckets)


def words(split: str, label: str) -> list[str]:
    pool = POSITIVE if label == "positive" else NEGATIVE
    return sorted({w for w in pool if split_of_word(w) == split})


@generators.register("sentiment")
def generate_sentiment(*, n: int, split: str, seed: int) -> list[Example]:
    """n reviews, alternating positive and negative, whose adjectives all belong to `split`."""
    check_request("sentiment", n, split)
    pools = {label: words(split, label) for label in LABELS}
    capacity = min(len(p) for p in pools.values()) * len(NOUNS) * len(TEMPLATES) * 2
    if n > capacity:
        raise DataError(f"sentiment: split '{split}' holds at most {capacity} distinct reviews; ask for at most that")
    rng = random.Random(f"sentiment:{split}:{seed}")
    seen: set[str] = set()
    out: list[Example] = []
    while len(out) < n:
        label = LABELS[len(out) % 2]
        word = rng.choice(pools[label])
        sentence = rng.choice(TEMPLATES).format(noun=rng.choice(NOUNS), word=word)
        if sentence in seen:
            continue
        seen.add(sentence)
        out.append(Example(prompt=[{"role": "user", "content": QUESTION.format(sentence=sentence)}], completion=label,
                           label=label, meta={"word": word, "source": f"sentiment:{split}:{len(out)}"}))
    return out

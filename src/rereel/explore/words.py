"""Words to a query vector for an ImageNet encoder, through its class names.

The default encoder was trained on ImageNet's 1000 classes, not on language, so words can
only reach it through those classes: "water" picks the classes whose names or WordNet
synonyms contain the word (water snake, water buffalo, water bottle...), and the query is the
weighted sum of those classes' (unit-length) classifier rows. A shot's cosine with one row
ranks shots as that class's logit does (the bias is the same for every shot), which is what
"looks most like this class" means to the network.

Names are not enough ("flower" is in no ImageNet name: daisy is), so the one-sentence
definitions are searched too: a word early in a definition ("A daisy is a composite
flower...") names the kind of thing, which stands in for WordNet's is-a hierarchy. The user
is always told which classes were used, so they can rephrase.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rereel.encoders import l2_normalise
from rereel.errors import RereelError

DATA = Path(__file__).with_name("imagenet_classes.json")
MAX_CLASSES = 12
MAX_QUERY_WORDS = 40  # different words in one word query (see match_classes)
# Match strengths: the whole name ("daisy"), its head noun ("shark" in "tiger shark"), the
# kind of thing its definition says it is ("a composite flower"), a modifier ("water" in
# "water bottle"), a detail further on in its definition.
WHOLE, HEAD, DEFINITION, MODIFIER, DETAIL = 1.0, 0.9, 0.7, 0.5, 0.3
KEEP = 0.5  # classes weaker than this are used only when there is nothing else
GENUS_WORDS = 10
# Words that name nothing to see, left out when a phrase is searched word by word.
STOPWORDS = frozenset("a an the of in on at to with and or by from for into over under its it is are".split())


@dataclass(frozen=True)
class ClassMatch:
    index: int
    name: str  # the class's first name
    matched: str  # the name or definition that matched
    weight: float


@lru_cache(maxsize=1)
def imagenet_classes() -> list[tuple[list[str], str]]:
    """[(names and synonyms, one-sentence definition)] for the 1000 classes, in class order."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return [(names, definition) for names, definition in data["classes"]]


def _words(text: str) -> list[str]:
    return [_singular(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def _singular(word: str) -> str:
    """Crude English singular, enough for class names ("flowers", "boxes", "berries")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _phrase_in(phrase: list[str], words: list[str]) -> int:
    """Position of `phrase` as consecutive words in `words`, or -1."""
    n = len(phrase)
    for i in range(len(words) - n + 1):
        if words[i : i + n] == phrase:
            return i
    return -1


def shortened(query: str, most: int = 60) -> str:
    """`query` as a line shows it: cut short where it is long (a page may send kilobytes, which
    an error line, a title or a grid's caption would otherwise repeat)."""
    return query if len(query) <= most else query[:most] + "…"


def _quoted(query: str) -> str:
    return repr(shortened(query))


def match_classes(query: str, limit: int = MAX_CLASSES) -> list[ClassMatch]:
    """ImageNet classes for `query`. Commas separate alternatives ("water, fountain, geyser")."""
    phrases = list(dict.fromkeys(tuple(_words(p)) for p in query.split(",")))  # each once, in order
    phrases = [list(p) for p in phrases if p]
    if not phrases:
        raise RereelError(f"{_quoted(query.strip())}: no words in it (letters or digits) to search for; "
                          "give words, such as 'dog, ocean'" if query.strip() else "empty word query")
    # Each phrase, then each of its words, is looked for in all 1000 classes: a query of thousands
    # of words held the web app's archive for a minute. A person's query is a few words.
    distinct = len({w for p in phrases for w in p})
    if distinct > MAX_QUERY_WORDS:
        raise RereelError(f"{_quoted(query)}: {distinct} different words; a word query takes at most "
                          f"{MAX_QUERY_WORDS} (a few, such as 'dog, ocean', find most)")
    best: dict[int, ClassMatch] = {}

    def offer(m: ClassMatch) -> None:
        if m.index not in best or m.weight > best[m.index].weight:
            best[m.index] = m

    classes = imagenet_classes()

    def search(phrase: list[str]) -> bool:
        """Offer the classes `phrase` matches; whether there was any."""
        found = False
        for index, (names, definition) in enumerate(classes):
            for n, name in enumerate(names):
                words = _words(name)
                at = _phrase_in(phrase, words)
                if at < 0:
                    continue
                if len(words) == len(phrase):
                    weight = WHOLE
                elif at + len(phrase) == len(words) and n == 0:
                    weight = HEAD
                else:  # a modifier, or the head of a synonym ("river horse" is the hippopotamus)
                    weight = MODIFIER
                offer(ClassMatch(index, names[0], name, weight))
                found = True
            at = _phrase_in(phrase, _words(definition)) if definition else -1
            if at >= 0:
                # Early in a definition the word names the kind of thing ("A large wading bird
                # with..."): WordNet's is-a, nearly. Later it is a detail ("...lives near water").
                offer(ClassMatch(index, names[0], definition, DEFINITION if at < GENUS_WORDS else DETAIL))
                found = True
        return found

    searched: set[str] = set()
    for phrase in phrases:
        if not search(phrase):  # "a horse galloping": no class says that; its words, one by one
            for word in (w for w in phrase if w not in STOPWORDS and w not in searched):
                searched.add(word)
                search([word])
    if not best:
        raise RereelError(
            f"no ImageNet class matches {_quoted(query)} (the default encoder knows words only through its 1000 class "
            "names: try a concrete noun such as 'daisy', 'fountain', 'sports car', or index with --encoder clip)"
        )
    ranked = sorted(best.values(), key=lambda m: (-m.weight, m.index))
    # Passing mentions only count when nothing better matched.
    floor = min(KEEP, ranked[0].weight)
    return [m for m in ranked if m.weight >= floor][:limit]


def class_query(matches: list[ClassMatch], classifier: np.ndarray) -> np.ndarray:
    """The unit query vector: classifier rows [1000, dim] weighted by match strength."""
    q = np.zeros(classifier.shape[1], np.float64)
    for m in matches:
        row = classifier[m.index].astype(np.float64)
        q += m.weight * row / max(np.linalg.norm(row), 1e-8)
    return l2_normalise(q).astype(np.float32)


def effnet_classifier() -> np.ndarray:
    """EfficientNet-Lite0's ImageNet classifier weights [1000, 1280], from the packaged checkpoint."""
    from rereel.encoders.effnet_lite import load_pretrained

    return load_pretrained()._fc.weight.detach().cpu().numpy()

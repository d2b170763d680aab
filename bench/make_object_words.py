r"""Writes model/pretrained/object_words.tsv: the plain words a caption uses for the classifier's 1000 classes.

Each ImageNet class (line i of the labels file) gets its WordNet 3.0 synset, then:
- word: its entry-level word, after Ordonez et al. 2013 ("From Large Scale Image Categorization to
  Entry-Level Categories"): among the names of the synset and of its hypernyms (@ and @i), the one maximising
  naturalness - LAMBDA * hops up the hierarchy; naturalness is the name's Zipf frequency in wordfreq, lowered
  for the name's less common senses (WordNet's sense order in index.noun);
- kind: a coarse category, the first of ANCHORS among its hypernyms ("thing" if none);
- words: the plain words from `word` up to the kind's general word, specific first ('parrot|bird|animal'),
  which tell whether a caption's word agrees with the classifier.

It also writes model/pretrained/living_words.tsv: every common noun that names a living being of one of
LIVING_KINDS (person, dog, cat, horse, bird, animal) by its most frequent sense ("puppy" a dog, "crowd" people)
and is a noun first in SemCor's counts ("young", "few" are adjectives first), and their irregular plurals ("men",
"geese"), so that a caption's word is recognised as naming that kind. Its summary lists the living words in the
captioner's vocabulary, for review.

Reproduce them (WordNet, with SemCor's counts in cntlist.rev, from Debian's wordnet-base 1:3.0-37 in
/usr/share/wordnet; wordfreq only for this script, altvoice does not need it):

    sudo apt-get install wordnet-base=1:3.0-37 && .venv/bin/pip install wordfreq==3.1.1
    .venv/bin/python bench/make_object_words.py --wordnet /usr/share/wordnet \
        --labels ../shared/models/imagenet/imagenet_labels.txt --output model/pretrained/object_words.tsv \
        --living-output model/pretrained/living_words.tsv

tests/bench/test_make_object_words.py checks the tables and, where both are installed, that this rebuilds them.
"""
import argparse
import collections
import functools
import math
import os
import re

# Zipf units a name loses per hop up the hierarchy: above 1.14 "parrot" (Zipf 3.49, 1 hop up from macaw)
# beats "bird" (4.63, 2 hops); below 1.47 "coffee" (4.86, 1 hop) beats "espresso" (3.39).
LAMBDA = 1.3
# Names rarer than this are obscure, never chosen: above the taxonomists' "mammal" (3.31) and "canine" (3.33),
# below "espresso" (3.39), "zebra" (3.40) and "diver" (3.41).
MIN_ZIPF = 3.35
# Living words are only recognised, never chosen, so rarer ones count: "skier" (3.20), "foal" (2.83),
# "duckling" (2.66), not "hatchling" (2.17).
LIVING_MIN_ZIPF = 2.5
# Zipf units a name loses per doubling of its sense rank (index.noun lists a word's senses most frequent
# first, and they share its frequency): above 0.43 "couch" beats "convertible" (3.55, that word's 3rd sense)
# for a studio couch, below 0.92 "crane" (3.92, 4th sense) beats "device" for the machine; at 0 a mountain
# bike would be a "cycle" (6th sense).
SENSE = 0.75
# wordfreq rates a phrase as frequent as its rarer word ("day bed" 5.02, "sea wolf" for an orca), so
# multi-word and hyphenated names count only when they are the natural name.
PHRASES = {"hot dog", "ice cream"}
# Names whose Zipf frequency comes from other uses: WordNet's abstract top levels ("whole", "being" for
# organism, "instrumentality, instrumentation"), names ("mike", "murphy" for potato, "jack" for jackfruit,
# "ai" for sloth, "jersey", "trump" for cornet), other senses or parts of speech ("game" bird, "killer"
# whale, "ounce" for snow leopard, "wind" instrument, "produce", "good", "setup" for apparatus, "mini" skirt,
# "tit" for chickadee, "comfort" for quilt).
UNNATURAL = {"whole", "unit", "object", "entity", "being", "organism", "matter", "artifact", "instrumentation",
             "mike", "murphy", "jack", "ai", "jersey", "trump", "game", "killer", "ounce", "wind", "produce",
             "good", "setup", "mini", "tit", "comfort"}

# The 65 labels whose synset the wnid order leaves open (more than one synset with all their names fits
# between the neighbouring classes; the lowest would be wrong for 25, e.g. groom, volcano, monitor): the
# wnid of the ILSVRC2012 class (its LOC_synset_mapping.txt), keyed by first name.
PINNED = {
    "partridge": "n01807496", "echidna": "n01872401", "jellyfish": "n01910747", "ox": "n02403003",
    "abacus": "n02666196", "altar": "n02699494", "apron": "n02730930", "balloon": "n02782093",
    "bassinet": "n02804414", "beaker": "n02815834", "bib": "n02834397", "bow": "n02879718",
    "cannon": "n02950826", "castle": "n02980441", "chain": "n02999410", "chest": "n03014705",
    "cloak": "n03045698", "convertible": "n03100240", "dome": "n03220513", "dutch oven": "n03259280",
    "envelope": "n03291819", "fountain": "n03388043", "gondola": "n03447447", "gown": "n03450230",
    "half track": "n03478589", "hammer": "n03481172", "harp": "n03495258", "holster": "n03527444",
    "library": "n03661043", "lotion": "n03690938", "mask": "n03724870", "monitor": "n03782006",
    "mortar": "n03786901", "mortarboard": "n03787032", "palace": "n03877845", "pier": "n03933933",
    "pinwheel": "n03944341", "planetarium": "n03956157", "pole": "n03976657", "printer": "n04004767",
    "projector": "n04009552", "radiator": "n04040759", "radio": "n04041544", "reel": "n04067472",
    "rotisserie": "n04111531", "safe": "n04125021", "schooner": "n04147183", "screw": "n04153751",
    "shovel": "n04208210", "snorkel": "n04251144", "spatula": "n04270147", "spider web": "n04275548",
    "spindle": "n04277352", "stage": "n04296562", "stove": "n04330267", "stretcher": "n04336792",
    "tractor": "n04465501", "vault": "n04523525", "whistle": "n04579432", "wing": "n04592741",
    "wooden spoon": "n04597913", "yawl": "n04612504", "volcano": "n09472597", "groom": "n10148035",
    "corn": "n12144580",
}

# (kind, anchor synset's data.noun offset, the kind's general word there), most specific kinds first.
ANCHORS = [
    ("person", 7846, "person"),  # person, individual, someone, somebody, mortal, soul
    ("dog", 2084071, "dog"),  # dog, domestic dog, Canis familiaris
    ("cat", 2120997, "cat"),  # feline, felid: house cats and big cats
    ("horse", 2374451, "horse"),  # horse, Equus caballus
    ("bird", 1503061, "bird"),  # bird
    ("animal", 15388, "animal"),  # animal, animate being, beast, brute, creature, fauna
    ("drink", 7881800, "drink"),  # beverage, drink, drinkable, potable
    ("food", 21265, "food"),  # food, nutrient: dishes, sauces, bread
    ("food", 7555863, "food"),  # food, solid food: fruit and vegetables (produce)
    ("vehicle", 4524313, "vehicle"),  # vehicle
    ("vehicle", 4019101, "vehicle"),  # public transport: buses
    ("furniture", 3405725, "furniture"),  # furniture, piece of furniture, article of furniture
    ("clothing", 3051540, "clothing"),  # clothing, article of clothing, wear: garments, headdress, accessories
    ("clothing", 3380867, "clothing"),  # footwear, footgear (a covering, not clothing, in WordNet)
    ("plant", 17222, "plant"),  # plant, flora, plant life
    ("plant", 13086908, "plant"),  # plant part, plant structure: fruits, seeds, ears of corn
    ("plant", 12992868, "fungus"),  # fungus
    ("scene", 9287968, "formation"),  # geological formation: shores, mountains, valleys, cliffs, reefs
    ("structure", 4341686, "structure"),  # structure, construction: buildings, bridges, fences, monuments
]
KINDS = list(dict.fromkeys(kind for kind, _, _ in ANCHORS)) + ["thing"]
LIVING_KINDS = ("person", "dog", "cat", "horse", "bird", "animal")
# Anchors of living words besides ANCHORS' living ones (tried first):
# - groups of people are people ("a crowd", "a couple"). Their common ancestor, social group, also holds
#   organizations ("company", "school"), and gathering, above crowd and audience, also "court", "village",
#   "gallery", "cast": so the anchors are the groups' own synsets, with their hyponyms ("mob"). "group" (of dogs
#   too) is above them all and stays out;
# - WordNet files kittens and foals under "young mammal" alone, naming the species only in the gloss.
LIVING_ANCHORS = [
    ("person", 7942152),  # people: any group of human beings (its hyponyms: "folk", also "the poor", "the dead")
    ("person", 8182379),  # crowd
    ("person", 8221897),  # audience
    ("person", 7976936),  # pair: two people considered as a unit ("couple")
    ("person", 8208560),  # team, squad
    ("person", 8078020),  # family, household
    ("person", 2472293),  # homo, man, human being, human: a hominid to WordNet ("humans", "mankind" below it)
    ("cat", 2122948),  # kitten, kitty: young domestic cat
    ("horse", 2376542),  # foal: a young horse (and its colt, filly)
]
# A living word must be a noun first: SemCor (cntlist.rev) tags it as a noun at least as often as as any other
# part of speech, not mostly as an adjective ("few", "dead", "young", "great"), a verb ("dry", "monitor", "fly")
# or an adverb ("forward"); a word SemCor never tags passes. These stay though their adjective wins: a caption's
# "human" names a person ("a human pyramid"; "human nature" has 80 tags to 12), its "husky" the sled dog (no
# class word of object_words.tsv names it, as "bear" and "duck", verbs first, are).
NOUN_ANYWAY = {"human", "husky"}
# Caption words for people that WordNet misses: "biker" is no lemma of it (only "bikers", a gang), and it puts
# climber's vine, untagged in SemCor, before the climbers.
ALSO_LIVING = {"biker": "person", "climber": "person"}
# Words of the captioner's vocabulary (main() lists them) whose first noun sense is living but whose caption use
# is not, as Flickr8k's captions show: modifiers of the word that names the being ("female", "male": SemCor's
# nouns are mostly the animal sense, but "a female tennis player"; "giant" wave; "blonde" hair, "a blonde dog";
# "pet" dog), other senses ("cricket" the sport, "hind" legs, "piggy" back, German "shepherd" the dog, golf
# "club", "cream" coloured, art "gallery", a jacket's "hood", baby "stroller", "pacifier" and "carrier", roller
# "coaster", four "wheeler", "bunny" ears), a verb ("is chased by"; WordNet's noun is "the pursued"), noun.exc's
# plural of "diva" ("dive"), and a SemCor tie that puts a fierce person first ("tiger": object_words.tsv has
# the cat).
NOT_LIVING = {"female", "male", "giant", "blonde", "pet", "cricket", "hind", "piggy", "shepherd", "club", "cream",
              "gallery", "hood", "stroller", "pacifier", "carrier", "coaster", "wheeler", "bunny", "chased", "dive",
              "tiger"}
# The chains of these kinds go on up to "animal" ('parrot|bird|animal').
CHAIN_TOP = {"dog": 15388, "cat": 15388, "horse": 15388, "bird": 15388}

# Label -> the entry words a caption would use, checked on every run and by tests/bench.
EXPECTED = {
    "Egyptian cat": {"cat"}, "tabby": {"cat"}, "tiger cat": {"cat"}, "macaw": {"parrot"},
    "African grey": {"parrot"}, "studio couch": {"couch", "sofa"}, "espresso": {"coffee"},
    "Labrador retriever": {"dog"}, "golden retriever": {"dog"}, "hotdog": {"hot dog"}, "pizza": {"pizza"},
    "banana": {"banana"}, "sports car": {"car"}, "convertible": {"car"}, "mountain bike": {"bicycle", "bike"},
    "airliner": {"airplane", "plane"}, "container ship": {"ship", "boat"}, "lion": {"lion"},
    "zebra": {"zebra"}, "African elephant": {"elephant"}, "goldfish": {"fish", "goldfish"}, "tench": {"fish"},
    "laptop": {"laptop", "computer"}, "wine bottle": {"bottle"}, "coffee mug": {"mug", "cup"},
    "rocking chair": {"chair"}, "park bench": {"bench"}, "pool table": {"table"}, "jersey": {"shirt"},
    "groom": {"man", "groom"}, "scuba diver": {"diver"},
}

Synset = collections.namedtuple("Synset", "lemmas hypernyms")


def parse_line(line: str):
    """(offset, Synset) of a data.noun line, None for a licence line. Lemmas get spaces for underscores;
    hypernyms are the @ (hypernym) and @i (instance hypernym) pointers."""
    if line.startswith("  "):
        return None
    fields = line.partition(" | ")[0].split()
    count = int(fields[3], 16)
    lemmas = [word.replace("_", " ") for word in fields[4:4 + 2 * count:2]]
    start = 5 + 2 * count
    pointers = [fields[start + 4 * k:start + 4 * k + 2] for k in range(int(fields[start - 1]))]
    return int(fields[0]), Synset(lemmas, [int(target) for symbol, target in pointers if symbol in ("@", "@i")])


def read_synsets(folder: str) -> dict:
    with open(os.path.join(folder, "data.noun")) as f:
        return dict(parsed for parsed in map(parse_line, f) if parsed)


def read_sense_ranks(folder: str) -> dict:
    """{(lemma key, offset): rank of that sense among the lemma's noun senses, 1 = the most frequent}."""
    ranks = {}
    with open(os.path.join(folder, "index.noun")) as f:
        for line in f:
            if not line.startswith("  "):
                fields = line.split()
                offsets = fields[-int(fields[2]):]
                ranks.update({(key(fields[0]), int(o)): rank for rank, o in enumerate(offsets, 1)})
    return ranks


def read_plurals(folder: str) -> dict:
    """{irregular plural: its lemmas} from noun.exc ("men": ["man"], "axes": ["ax", "axis"])."""
    with open(os.path.join(folder, "noun.exc")) as f:
        return {plural: lemmas for plural, *lemmas in map(str.split, f)}


def read_tag_counts(folder: str) -> dict:
    """{lemma: Counter({part of speech: its SemCor tag count})} from cntlist.rev ("man%1:18:00:: 1 749": 749 tags
    of "man" as a noun): "n", "v", "a" (adjectives and their satellites), "r"."""
    counts = collections.defaultdict(collections.Counter)
    with open(os.path.join(folder, "cntlist.rev")) as f:
        for sense_key, _, count in map(str.split, f):
            lemma, _, rest = sense_key.partition("%")
            counts[lemma]["nvara"[int(rest[0]) - 1]] += int(count)  # ss_type 1-5, 5 an adjective satellite
    return counts


def key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def resolve(labels: list, synsets: dict, pinned: dict) -> list:
    """The synset offset of each label: one having all the label's comma-separated names as lemmas, the
    offsets increasing along the labels (ImageNet's class order). `pinned` gives the wnid of the labels
    (by first name) that the order leaves open. Raises unless every label gets exactly one synset."""
    by_lemma = collections.defaultdict(set)
    for offset, synset in synsets.items():
        for lemma in synset.lemmas:
            by_lemma[key(lemma)].add(offset)
    candidates = []
    for label in labels:
        names = [key(name) for name in label.split(",")]
        found = set.intersection(*(by_lemma[name] for name in names))
        if names[0] in pinned:
            pin = int(pinned[names[0]][1:])
            if pin not in found:
                raise ValueError(f"pinned {pinned[names[0]]} is not {label!r}")
            found = {pin}
        candidates.append(found)
    earliest = _lowest_increasing(labels, candidates)
    latest = [-o for o in _lowest_increasing(labels[::-1], [{-o for o in c} for c in candidates[::-1]])][::-1]
    undecided = [label for label, low, high in zip(labels, earliest, latest) if low != high]
    if undecided:
        raise ValueError(f"the order leaves these labels open, pin them: {undecided}")
    return earliest


def _lowest_increasing(labels: list, candidates: list) -> list:
    """Each label's lowest candidate above the previous label's choice."""
    chosen, bound = [], -math.inf
    for label, offsets in zip(labels, candidates):
        bound = min((o for o in offsets if o > bound), default=None)
        if bound is None:
            raise ValueError(f"no synset of {label!r} fits the order")
        chosen.append(bound)
    return chosen


def climb(synsets: dict, offset: int) -> dict:
    """{ancestor: (hops, the synset one hop below it on a shortest path)} of a synset, itself included."""
    up, frontier = {offset: (0, None)}, collections.deque([offset])
    while frontier:
        below = frontier.popleft()
        for above in synsets[below].hypernyms:
            if above not in up:
                up[above] = (up[below][0] + 1, below)
                frontier.append(above)
    return up


def describe(synsets: dict, ranks: dict, offset: int, zipf) -> tuple:
    """(word, kind, words) of the class synset at `offset`; zipf(name) is the name's Zipf frequency."""
    general = {anchor: word for _, anchor, word in ANCHORS}

    def names(at):  # [(naturalness, name)] of a synset
        if at in general:
            return [(zipf(general[at]), general[at])]
        return [(zipf(lemma) - SENSE * math.log2(ranks[key(lemma), at]), lemma) for lemma in synsets[at].lemmas
                if zipf(lemma) >= MIN_ZIPF and key(lemma) not in UNNATURAL
                and (key(lemma) in PHRASES or not re.search("[ -]", lemma))]

    up = climb(synsets, offset)
    kind, anchor = next(((kind, a) for kind, a, _ in ANCHORS if a in up), ("thing", None))
    # The word is no more general than the kind: a whippet is a "hound", not an "animal" (as a racer).
    too_general = set(climb(synsets, anchor)) - {anchor} if anchor else set()
    _, _, word, start = max(((natural - LAMBDA * hops, -hops, name, at) for at, (hops, _) in up.items()
                             if at not in too_general for natural, name in names(at)),
                            default=(0, 0, synsets[offset].lemmas[0], offset))  # no plain name: its own
    # The chain climbs from the word's synset (from the class if the word is off the kind's branch) to the
    # kind's anchor, on to CHAIN_TOP, or for a thing to WordNet's root, naming each synset on the way.
    stops = [anchor, CHAIN_TOP.get(kind)] if anchor else [max(up, key=lambda a: up[a][0])]
    words, below = [key(word)], start if stops[0] in climb(synsets, start) else offset
    for stop in filter(None, stops):
        above = climb(synsets, below)
        path = [stop]
        while path[-1] != below:
            path.append(above[path[-1]][1])
        for at in reversed(path[:-1]):
            name = max(names(at), default=(0, None))[1]
            if name and key(name) not in words:
                words.append(key(name))
        below = stop
    return words[0], kind, words


def living_words(synsets: dict, ranks: dict, plurals: dict, zipf, tags: dict) -> dict:
    """{word: kind} of the single lowercase nouns at least LIVING_MIN_ZIPF frequent, nouns first by their SemCor
    `tags` (read_tag_counts) or in NOUN_ANYWAY, not in NOT_LIVING, whose most frequent sense has a living anchor
    among its hypernyms (the first of LIVING_ANCHORS and ANCHORS met), of their irregular plurals: noun.exc's
    and, by WordNet's morphology rule, the "-men" of a "-man" that wordfreq knows better than its "-mans"
    ("women"), and of ALSO_LIVING. A capitalised lemma is a name, not a sense of the caption's word (index.noun's first "crane" is
    Stephen Crane, its first "jay" John Jay)."""
    first = {}
    for _, word, offset in sorted((ranks[lemma, at], lemma, at) for at, synset in synsets.items()
                                  for lemma in synset.lemmas if re.fullmatch("[a-z]+", lemma)):
        first.setdefault(word, offset)
    anchors = LIVING_ANCHORS + [(kind, a) for kind, a, _ in ANCHORS if kind in LIVING_KINDS]
    table = {}
    for word, offset in first.items():
        counts = tags.get(word, collections.Counter())
        if (zipf(word) >= LIVING_MIN_ZIPF and word not in NOT_LIVING
                and (counts["n"] >= max(counts.values(), default=0) or word in NOUN_ANYWAY)):
            up = climb(synsets, offset)
            kind = next((kind for kind, a in anchors if a in up), None)
            if kind:
                table[word] = kind
    men = {word[:-3] + "men": [word] for word in table
           if word.endswith("man") and zipf(word[:-3] + "men") > zipf(word + "s")}
    irregular = {plural: next((table[lemma] for lemma in lemmas if lemma in table), None)
                 for plural, lemmas in {**plurals, **men}.items()
                 if re.fullmatch("[a-z]+", plural) and plural not in NOT_LIVING}
    return {**table, **{plural: kind for plural, kind in irregular.items() if kind}, **ALSO_LIVING}


def unmet(rows: list) -> list:
    """The EXPECTED entry words that the rows (index, wnid, label, word, ...) miss, as messages."""
    words = {row[2]: row[3] for row in rows}
    return [f"{label} -> {words.get(label)}, expected {' or '.join(sorted(ok))}"
            for label, ok in EXPECTED.items() if words.get(label) not in ok]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--wordnet", default="/usr/share/wordnet",
                        help="folder of WordNet 3.0 data.noun, index.noun, noun.exc, cntlist.rev")
    parser.add_argument("--labels", help="background, then the 1000 classes",
                        default=os.path.join(root, "..", "shared", "models", "imagenet", "imagenet_labels.txt"))
    parser.add_argument("--output", default=os.path.join(root, "model", "pretrained", "object_words.tsv"))
    parser.add_argument("--living-output", default=os.path.join(root, "model", "pretrained", "living_words.tsv"))
    parser.add_argument("--vocabulary", default=os.path.join(root, "model", "pretrained", "vocabulary.txt"),
                        help="the captioner's words, one a line: the summary lists the living words among them")
    args = parser.parse_args()
    from wordfreq import zipf_frequency

    synsets, ranks = read_synsets(args.wordnet), read_sense_ranks(args.wordnet)
    zipf = functools.partial(zipf_frequency, lang="en")
    with open(args.labels) as f:
        labels = f.read().splitlines()[1:]
    assert len(labels) == 1000, len(labels)
    rows = []
    for index, (label, offset) in enumerate(zip(labels, resolve(labels, synsets, PINNED)), 1):
        word, kind, words = describe(synsets, ranks, offset, zipf)
        rows.append([str(index), f"n{offset:08d}", label.split(",")[0], word, kind, "|".join(words)])
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines("\t".join(row) + "\n" for row in [["index", "wnid", "label", "word", "kind", "words"]] + rows)

    living = living_words(synsets, ranks, read_plurals(args.wordnet), zipf, read_tag_counts(args.wordnet))
    with open(args.living_output, "w", encoding="utf-8") as f:
        f.writelines(f"{word}\t{kind}\n" for word, kind in [("word", "kind")] + sorted(living.items()))

    kinds = collections.Counter(row[4] for row in rows)
    common = collections.Counter(row[3] for row in rows).most_common(20)
    failed = unmet(rows)
    print(f"wrote {len(rows)} classes to {args.output}")
    print("kinds:", ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS))
    print("commonest words:", ", ".join(f"{word} {count}" for word, count in common))
    print(f"expectations: {len(EXPECTED) - len(failed)}/{len(EXPECTED)} hold", *failed, sep="\n  ")
    living_kinds = collections.Counter(living.values())
    print(f"wrote {len(living)} living words to {args.living_output}:",
          ", ".join(f"{kind} {living_kinds[kind]}" for kind in LIVING_KINDS))
    with open(args.vocabulary) as f:
        vocabulary = set(f.read().split())
    print(f"living words in the captioner's vocabulary ({args.vocabulary}), to review:")
    for kind in LIVING_KINDS:
        words = sorted(word for word in vocabulary if living.get(word) == kind)
        print(f"  {kind} {len(words)}:", " ".join(words))


if __name__ == "__main__":
    main()

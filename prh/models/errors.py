"""The error every model family raises: a leaf module (no torch, no prh
import), so the registry, the interface and the families all import it
without importing one another."""


class ModelError(ValueError):
    """A model that cannot be found, loaded or run; the message says which and why."""


def first_line(err: BaseException) -> str:
    """An error's first line (at most 200 characters; its type if it has no
    message), for a one-line ModelError that quotes it."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def is_unsafe_pickle(err: BaseException | None) -> bool:
    """Whether ``err`` (or an error it was raised from) is torch.load's
    weights_only refusal of a pickle that holds more than tensors."""
    import pickle

    for _ in range(10):
        if err is None:
            return False
        if isinstance(err, pickle.UnpicklingError):
            return True
        err = err.__cause__ or err.__context__
    return False


def unsafe_pickle_error(model: str, path: object, err: BaseException) -> ModelError:
    """The refusal of a pickled weights file that is more than tensors."""
    return ModelError(f"model {model}: {path}: refused: the pickle holds more than tensors "
                      f"({first_line(err)}); prh loads pickled weights only as plain tensors "
                      "(torch.load weights_only=True): save the weights as safetensors")

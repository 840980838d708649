"""The prompted model: base creation, prompt factors, prompted towers, save/load."""

from mmlop.model.factory import BaseCLIP, QuickGeluMismatchError, base_from_model, load_base, register_base
from mmlop.model.prompted import MMLoP
from mmlop.model.towers import UnsupportedModelError

__all__ = ["BaseCLIP", "MMLoP", "QuickGeluMismatchError", "UnsupportedModelError", "base_from_model", "load_base",
           "register_base"]

"""Every model of the zoo; importing this package registers them with the CLI."""

from derain_zoo.models.base import DerainModule
from derain_zoo.models.baselines import Identity, TemporalMedian

# one line per model: importing it registers it with the CLI and the registry-wide tests
from derain_zoo.models.ddsa import DDSA
from derain_zoo.models.estinet import ESTINet
from derain_zoo.models.j4rnet import J4RNet
from derain_zoo.models.raintrn import RainTRN
from derain_zoo.models.rmfd import RMFD
from derain_zoo.models.s2vd import S2VD

__all__ = ["DDSA", "DerainModule", "ESTINet", "Identity", "J4RNet", "RainTRN", "RMFD", "S2VD", "TemporalMedian"]

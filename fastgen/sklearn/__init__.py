"""scikit-learn estimators backed by fastgen's compiled kernels.

One estimator per module: :class:`BernoulliRBM` (``_rbm``, with scikit-learn's underscore helpers
in ``_rbm_compat``), :class:`GaussianBernoulliRBM` (``_gbrbm``) and :class:`DBN` (``_dbn``). Their
parameters are checked against one table (``_params``), their input data in one place
(``_data``).
"""
from ._dbn import DBN
from ._gbrbm import GaussianBernoulliRBM
from ._parallel import data_parallel
from ._params import check_random_state_named  # noqa: F401  (public before the split)
from ._rbm import BernoulliRBM

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "DBN", "data_parallel"]

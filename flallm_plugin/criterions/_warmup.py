"""The auxiliary-loss warm-up the stage-1 criteria share: the first N updates train the auxiliary loss alone.

fairseq tells models the update number, not criteria: the ``sign_translation`` task calls
``criterion.set_num_updates`` before each training step (as fairseq's task calls
``model.set_num_updates``), and :meth:`AuxiliaryWarmup.auxiliary_only` reads it.
"""


class AuxiliaryWarmup(object):
    """Mixin: ``self.name`` (the criterion's registered name), ``self.warmup_flag`` (its option, for
    errors) and ``self.aux_only_updates`` (N) are set by the criterion."""

    name: str
    warmup_flag: str
    aux_only_updates: int = 0
    num_updates = None  # set by the task before every training step

    def set_num_updates(self, num_updates: int) -> None:
        """The trainer's update number (the sign_translation task calls this before each training step)."""
        self.num_updates = num_updates

    def auxiliary_only(self, model) -> bool:
        """Whether this forward trains the auxiliary loss alone (the first N training updates)."""
        if self.aux_only_updates == 0 or not model.training:
            return False
        if self.num_updates is None:
            raise ValueError(
                f"{self.name}: {self.warmup_flag} {self.aux_only_updates} needs the update number, which the "
                f"sign_translation task gives the criterion before each training step; this task did not: use "
                f"--task sign_translation or drop {self.warmup_flag}"
            )
        return self.num_updates < self.aux_only_updates

"""Vid2Robot policy, its baselines, losses and deployment helpers."""

from vid2robot.policy.action_tokenizer import ActionTokenizer
from vid2robot.policy.bcz import BCZConfig, BCZPolicy
from vid2robot.policy.checkpoint import save_policy
from vid2robot.policy.configuration_vid2robot import Vid2RobotConfig
from vid2robot.policy.deployment import DeployablePolicy, load_policy
from vid2robot.policy.frame_sampling import sample_prompt_frames, state_window_indices
from vid2robot.policy.losses import Vid2RobotLoss
from vid2robot.policy.modeling_vid2robot import Vid2RobotPolicy
from vid2robot.policy.policy_output import Vid2RobotOutput
from vid2robot.policy.preprocess import frames_to_tensor
from vid2robot.policy.registry import create_policy, policy_class, policy_classes, register_policy
from vid2robot.policy.siglip_loss import SigLIPLoss
from vid2robot.policy.task_conditioned import TaskIdConfig, TaskIdPolicy
from vid2robot.policy.temporal_cycle_consistency import temporal_cycle_consistency_loss
from vid2robot.policy.text_encoder import FrozenTextEncoder

__all__ = [
    "ActionTokenizer",
    "BCZConfig",
    "BCZPolicy",
    "DeployablePolicy",
    "FrozenTextEncoder",
    "SigLIPLoss",
    "TaskIdConfig",
    "TaskIdPolicy",
    "Vid2RobotConfig",
    "Vid2RobotLoss",
    "Vid2RobotOutput",
    "Vid2RobotPolicy",
    "create_policy",
    "frames_to_tensor",
    "load_policy",
    "policy_class",
    "policy_classes",
    "register_policy",
    "sample_prompt_frames",
    "save_policy",
    "state_window_indices",
    "temporal_cycle_consistency_loss",
]

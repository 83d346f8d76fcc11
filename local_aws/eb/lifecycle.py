"""Timed transitions of environments and application versions.

An operation changes the status at once (Launching, Updating, Terminating,
Processing) and schedules the rest as steps, ``delay_s`` apart, that run when
state is next read. Each step writes the events AWS writes for it, with the
step's own timestamp, so DescribeEvents reads like a real timeline.

Deploy outcomes come from the environment's :class:`~.hooks.DeployHook`;
health from its natural state (set here) unless its
:class:`~.hooks.HealthSource` has an opinion. A hook that runs real processes
may answer "pending": the step then waits, asking the hook again every
``POLL_S`` seconds (on reads, like every step), and goes on with the outcome.
For such hooks the instance list follows the processes that really run
(:meth:`Lifecycle.sync_instances`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .hooks import CONFIGURE, DONE, RANK, REBUILD, RESTART, TERMINATE, DeployOutcome, HealthReading
from .models import LAUNCHING, READY, TERMINATED, TERMINATING, UPDATING, Environment, EventLog, LoadBalancer, Resources, Scheduler
from .options import ASG, OptionKey
from .runtime import RUNTIME, utcnow

ENVIRONMENT_NS = "aws:elasticbeanstalk:environment"
COMMAND_NS = "aws:elasticbeanstalk:command"
ROLLBACK_POLICIES = ("Immutable", "TrafficSplitting")
ABORTED_ROLLING = (
    "During an aborted deployment, some instances may have deployed the new application version. "
    "To ensure all instances are running the same version, re-deploy the appropriate application version."
)

POLL_S = 0.1  # real seconds between two questions to a hook that answered "pending"

Settings = Mapping[OptionKey, str]


def desired_instances(settings: Settings) -> int:
    """Instances the Auto Scaling group keeps: MinSize (at most MaxSize), or 1 for a single-instance environment."""
    if settings.get((ENVIRONMENT_NS, "EnvironmentType")) == "SingleInstance":
        return 1
    return max(1, min(int(settings.get((ASG, "MinSize"), "1")), int(settings.get((ASG, "MaxSize"), "4"))))


@dataclass(frozen=True)
class Update:
    """What an UpdateEnvironment asks for (beyond what is applied at once)."""

    version_label: str | None = None
    reconfigure: bool = False
    platform_change: bool = False


class Lifecycle:
    def __init__(self, scheduler: Scheduler, log: EventLog, effective: Callable[[Environment], Settings]):
        self.scheduler = scheduler
        self.log = log
        self.effective = effective

    # -- helpers -------------------------------------------------------------------
    def say(self, env: Environment, at: datetime, message: str, severity: str = "INFO", version: str | None = None) -> None:
        self.log.add(
            at, message, env.application_name, severity,
            environment_name=env.name, environment_id=env.env_id, version_label=version or env.version_label,
            platform_arn=env.platform_arn, request_id=env.request_id,
        )  # fmt: skip

    def later(self, env: Environment, at: datetime, steps: float, label: str, action: Callable[[datetime], None]) -> None:
        self.scheduler.at(RUNTIME.after(at, steps), env.env_id, label, action)

    def _await(self, env: Environment, at: datetime, outcome: DeployOutcome, label: str, then: Callable[[datetime, DeployOutcome], None]) -> None:
        """Go on with ``then`` once the hook's work is done: at once, or from a later step."""
        if not outcome.pending:
            then(at, outcome)
            return

        def check(t: datetime) -> None:
            result = env.deploy_hook.poll(t)
            if result.pending:
                self.scheduler.at(max(t, utcnow()) + timedelta(seconds=POLL_S), env.env_id, label, check)
            else:
                then(t, result)

        self.scheduler.at(at + timedelta(seconds=POLL_S), env.env_id, label, check)

    def served(self, env: Environment) -> bool:
        """Whether real processes run for this environment (the hook names its instances)."""
        return env.deploy_hook.instances() is not None

    def sync_instances(self, env: Environment, at: datetime) -> None:
        """For environments that run processes: the instance list is theirs; changes write the events."""
        ids = env.deploy_hook.instances()
        if ids is None or env.status in (TERMINATING, TERMINATED) or ids == env.resources.instances:
            return
        for instance in ids:
            if instance not in env.resources.instances:
                self.say(env, at, f"Added instance [{instance}] to your environment.")
        for instance in env.resources.instances:
            if instance not in ids:
                self.say(env, at, f"Removed instance [{instance}] from your environment.")
        env.resources.instances = list(ids)

    def refresh_health(self, env: Environment, at: datetime) -> None:
        """Report the effective health; a change writes the transition event."""
        if not env.active:
            env.reported_health = None
            return
        current = env.health_source.reading(at) or env.natural_health
        previous = env.reported_health
        env.reported_health = current
        if previous is None or previous == current:
            return
        message = f"Environment health has transitioned from {previous.status} to {current.status}."
        if current.causes:
            message = f"{message} {' '.join(current.causes)}"
        worse = RANK.get(current.status, 0) > RANK.get(previous.status, 0) and RANK.get(current.status, 0) >= 2
        self.say(env, at, message, "WARN" if worse else "INFO")

    def desired_instances(self, env: Environment) -> int:
        return desired_instances(self.effective(env))

    def _scale(self, env: Environment, at: datetime) -> None:
        if self.served(env):
            self.sync_instances(env, at)
            return
        added, removed = env.resources.resize(self.desired_instances(env))
        for instance in added:
            self.say(env, at, f"Added instance [{instance}] to your environment.")
        for instance in removed:
            self.say(env, at, f"Removed instance [{instance}] from your environment.")

    def _begin(self, env: Environment, at: datetime, status: str, abortable: bool = False) -> None:
        env.status, env.abortable, env.date_updated = status, abortable, at

    def _finish(self, env: Environment, at: datetime) -> None:
        env.status, env.abortable, env.date_updated, env.deploying_version = READY, False, at, None
        env.config_status, env.config_updated = "deployed", at
        self.refresh_health(env, at)

    def _reshape_balancer(self, env: Environment) -> None:
        """Single-instance environments have no load balancer; a type change replaces it."""
        settings = self.effective(env)
        load_balanced = settings.get((ENVIRONMENT_NS, "EnvironmentType")) != "SingleInstance" and env.tier["Name"] == "WebServer"
        kind = settings.get((ENVIRONMENT_NS, "LoadBalancerType"), "classic")
        balancer = env.resources.load_balancer
        if not load_balanced:
            env.resources.load_balancer = None
        elif balancer is None or balancer.kind != kind:
            env.resources.load_balancer = LoadBalancer.create(kind, env.env_id, env.region, env.account_id)

    # -- CreateEnvironment ----------------------------------------------------------------
    def launch(self, env: Environment, at: datetime, storage_bucket: str) -> None:
        self._begin(env, at, LAUNCHING)
        self._reshape_balancer(env)
        self.say(env, at, "createEnvironment is starting.")
        self.say(env, at, f"Using {storage_bucket} as Amazon S3 storage bucket for environment data.")
        self.later(env, at, 0.5, "provision", lambda t: self._provision(env, t))
        self.later(env, at, 1.0, "launched", lambda t: self._launched(env, t))

    def _provision(self, env: Environment, at: datetime) -> None:
        if env.resources.load_balancer:
            self.say(env, at, f"Created load balancer named: {env.resources.load_balancer.name}")
        self.say(env, at, f"Created Auto Scaling group named: {env.resources.auto_scaling_group}")
        self.say(env, at, "Waiting for EC2 instances to launch. This may take a few minutes.")

    def _launched(self, env: Environment, at: datetime) -> None:
        deployed = env.deploy_hook.deploy(env.version_label, at)  # first: it says whether processes will run
        self._scale(env, at)
        if env.resources.load_balancer is None and env.tier["Name"] == "WebServer":
            env.resources.public_ip = Resources.new_public_ip()
        self._await(env, at, deployed, "launching", lambda t, outcome: self._launch_done(env, t, outcome))

    def _launch_done(self, env: Environment, at: datetime, outcome: DeployOutcome) -> None:
        self._scale(env, at)
        if outcome.ok:
            self.say(env, at, "Instance deployment completed successfully.")
            env.natural_health = HealthReading("Ok")
            self.refresh_health(env, at)
            if env.cname:
                self.say(env, at, f"Application available at {env.cname}.")
            self.say(env, at, f"Successfully launched environment: {env.name}")
        else:
            self.say(env, at, f"Instance deployment failed. {outcome.message}".strip(), "ERROR")
            env.natural_health = HealthReading("Severe", (f"Instance deployment failed. {outcome.message}".strip(),))
            self.refresh_health(env, at)
            self.say(env, at, "Create environment operation is complete, but with errors. For more information, see troubleshooting documentation.", "WARN")
        self._finish(env, at)

    # -- UpdateEnvironment -------------------------------------------------------------------
    def update(self, env: Environment, at: datetime, update: Update) -> None:
        self._begin(env, at, UPDATING, abortable=update.version_label is not None)
        env.deploying_version = update.version_label
        env.config_status = "pending" if update.reconfigure or update.platform_change else env.config_status
        self.say(env, at, "Environment update is starting.")
        if update.reconfigure or update.platform_change:
            self.say(env, at, f"Updating environment {env.name}'s configuration settings.")
        if update.version_label:
            self.later(env, at, 0.25, "deploying", lambda t: self._deploying(env, t, update.version_label))
        self.later(env, at, 1.0, "updated", lambda t: self._updated(env, t, update))

    def _policy(self, env: Environment) -> str:
        return self.effective(env).get((COMMAND_NS, "DeploymentPolicy"), "AllAtOnce")

    def _deploying(self, env: Environment, at: datetime, label: str | None) -> None:
        if self._policy(env) == "Immutable":
            self.say(env, at, "Immutable deployment policy enabled. Launching one instance with the new settings to verify health.", version=label)
        else:
            self.say(env, at, "Deploying new version to instance(s).", version=label)

    def _updated(self, env: Environment, at: datetime, update: Update) -> None:
        configured = update.reconfigure or update.platform_change
        if configured:
            self._reshape_balancer(env)
        if update.version_label:
            env.deployment_id += 1
            outcome = env.deploy_hook.deploy(update.version_label, at)  # with the new settings
        elif configured:
            outcome = env.deploy_hook.apply(CONFIGURE, at)
        else:
            outcome = DONE
        self._await(env, at, outcome, "updating", lambda t, result: self._update_done(env, t, update, result))

    def _update_done(self, env: Environment, at: datetime, update: Update, outcome: DeployOutcome) -> None:
        if update.reconfigure or update.platform_change:
            self._scale(env, at)
            if update.version_label or outcome.ok:
                self.say(env, at, "Successfully deployed new configuration to environment.")
        if update.version_label:
            self._deploy_version(env, at, update.version_label, outcome)
        elif not outcome.ok:
            self.say(env, at, f"Failed to deploy configuration. {outcome.message}".strip(), "ERROR")
            env.natural_health = HealthReading("Degraded", (f"Configuration update failed. {outcome.message}".strip(),))
        else:
            self.say(env, at, "Environment update completed successfully.")
        self._finish(env, at)

    def _deploy_version(self, env: Environment, at: datetime, label: str, outcome: DeployOutcome) -> None:
        if not outcome.ok:
            self._deploy_failed(env, at, label, outcome.message)
            return
        if self._policy(env) in ROLLBACK_POLICIES and not self.served(env):
            env.resources.instances = []
            self._scale(env, at)
        env.version_label = label
        env.natural_health = HealthReading("Ok")
        self.say(env, at, "Instance deployment completed successfully.")
        self.say(env, at, "New application version was deployed to running EC2 instances.")
        self.say(env, at, "Environment update completed successfully.")

    def _deploy_failed(self, env: Environment, at: datetime, label: str, message: str) -> None:
        policy = self._policy(env)
        first = env.resources.instances[0] if env.resources.instances else "i-unknown"
        count = len(env.resources.instances)
        self.say(env, at, f"[Instance: {first}] Command failed on instance. {message}".strip(), "ERROR", version=label)
        self.say(env, at, f"Command execution completed on all instances. Summary: [Successful: 0, Failed: {count}].", version=label)
        self.say(env, at, "Failed to deploy application.", "ERROR", version=label)
        if policy in ROLLBACK_POLICIES:
            cause = f"Deployment of version '{label}' failed and was rolled back; the environment runs version '{env.version_label}'."
            self.say(env, at, f"Rolled back to the previous application version ({env.version_label}): the new instances failed.", "WARN")
        else:
            env.version_label = label
            cause = f'Incorrect application version found on all instances. Expected version "{label}" (deployment {env.deployment_id}).'
            if policy != "AllAtOnce":
                self.say(env, at, ABORTED_ROLLING, "WARN")
        env.natural_health = HealthReading("Degraded", (f"Command failed on all instances. {cause}",))

    # -- RestartAppServer / RebuildEnvironment / tag updates --------------------------------------------
    def operation(self, env: Environment, at: datetime, name: str, replace_instances: bool = False) -> None:
        """An operation that runs and completes: '<name> is starting.' ... '<name> completed successfully.'"""
        self._begin(env, at, UPDATING)
        self.say(env, at, f"{name} is starting.")

        def done(t: datetime) -> None:
            outcome = env.deploy_hook.apply(REBUILD if replace_instances else RESTART, t)
            self._await(env, t, outcome, name, finish)

        def finish(t: datetime, outcome: DeployOutcome) -> None:
            if self.served(env):
                self.sync_instances(env, t)
            elif replace_instances:
                for instance in env.resources.instances:
                    self.say(env, t, f"Removed instance [{instance}] from your environment.")
                env.resources.instances = []
                self._scale(env, t)
            if outcome.ok:
                self.say(env, t, f"{name} completed successfully.")
            else:
                self.say(env, t, f"{name} failed. {outcome.message}".strip(), "ERROR")
                env.natural_health = HealthReading("Degraded", (f"{name} failed. {outcome.message}".strip(),))
            self._finish(env, t)

        self.later(env, at, 1.0, name, done)

    def retag(self, env: Environment, at: datetime) -> None:
        self._begin(env, at, UPDATING)
        self.say(env, at, "Environment update is starting.")

        def done(t: datetime) -> None:
            self.say(env, t, "Environment update completed successfully.")
            self._finish(env, t)

        self.later(env, at, 1.0, "tags", done)

    # -- SwapEnvironmentCNAMEs ------------------------------------------------------------------------
    def swap(self, source: Environment, destination: Environment, at: datetime) -> None:
        for env in (source, destination):
            self._begin(env, at, UPDATING)
            self.say(env, at, "swapEnvironmentCNAMEs is starting.")

        def done(t: datetime) -> None:
            source.cname, destination.cname = destination.cname, source.cname
            for env in (source, destination):
                self.say(env, t, f"Completed swapping CNAMEs for environments '{source.name}' and '{destination.name}'.")
                self._finish(env, t)

        self.later(source, at, 1.0, "swap", done)

    # -- TerminateEnvironment ----------------------------------------------------------------------------
    def terminate(self, env: Environment, at: datetime, terminate_resources: bool) -> None:
        self.scheduler.cancel(env.env_id)
        self._begin(env, at, TERMINATING)
        self.say(env, at, "terminateEnvironment is starting.")
        env.deploy_hook.apply(TERMINATE, at)  # processes stop now; the last step waits for them

        def done(t: datetime) -> None:
            self._await(env, t, env.deploy_hook.poll(t), "terminate", gone)

        def gone(t: datetime, _outcome: DeployOutcome) -> None:
            if terminate_resources:
                self.say(env, t, f"Deleted Auto Scaling group named: {env.resources.auto_scaling_group}")
                if env.resources.load_balancer:
                    self.say(env, t, f"Deleted load balancer named: {env.resources.load_balancer.name}")
            env.resources.instances = []
            env.status, env.terminated_at, env.date_updated = TERMINATED, t, t
            env.reported_health = None
            self.say(env, t, "terminateEnvironment completed successfully.")

        self.later(env, at, 1.0, "terminate", done)

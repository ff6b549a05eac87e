"""Every `dataeff.*` tag a run carries, named once. The other tags say what a run is about (the
axes of a study: `budget.*`, `init.*`, `data.*`, ...) and are named where they are decided.
"""

# what the job is: found again by a restarted sweep, compared by reports
JOB_KEY_TAG = "dataeff.job_key"  # a hash of the job's config as asked (before the stages filled it in)
JOB_PLACE_TAG = "dataeff.job_place"  # its place in a sweep, for resuming one job of many
SWEEP_KEY_TAG = "dataeff.sweep_key"
SMOKE_TAG = "dataeff.smoke"  # trainer.fast_dev_run: a smoke test, which reports leave out
OBJECTIVE_TAG = "dataeff.objective"  # what the app returned, returned again when the job is skipped
OVERRIDES_TAG = "dataeff.overrides"  # the command line's overrides, credentials redacted

# how it went
ATTEMPTS_TAG = "dataeff.attempts"  # 1, then one more each time the run is resumed
ERROR_TAG = "dataeff.error"  # why the run ended FAILED or KILLED, in one paragraph
EXPORTED_STEP_TAG = "dataeff.exported_step"  # the best-on-validation step, exported as hf_model/
EXPLAIN_FAITHFUL_TAG = "explain.faithful"  # explain=...: whether the attributions pass the deletion check
DISK_TAG = "dataeff.disk_mb"  # outputs + artifacts of the run, after settling

# where it runs, and whether it still does
OUTPUT_DIR_TAG = "dataeff.output_dir"
HOST_TAG = "dataeff.host"
PID_TAG = "dataeff.pid"
HEARTBEAT_TAG = "dataeff.heartbeat"  # unix seconds, refreshed by the run's logger

# a sweep's parent run
SWEEP_DIR_TAG = "dataeff.sweep_dir"
SWEEP_ATTEMPTS_TAG = "dataeff.sweep_attempts"
SWEEP_SIZE_TAG = "dataeff.sweep_size"  # N, counted by the main process (a job sees only its overrides)
SWEEP_SINCE_TAG = "dataeff.sweep_attempt_start"  # unix ms when this attempt of the sweep began
PROGRESS_TAG = "dataeff.progress"
CHILDREN_TAG = "dataeff.children"
FAILED_CHILDREN_TAG = "dataeff.failed_children"
REPORT_ERROR_TAG = "dataeff.report_error"  # the report the sweep's end could not write


def attempt_tag(attempt: int, what: str) -> str:
    """What a resumed run records of its attempt N: `overrides`, `ckpt_path`, `previous_status`, ..."""
    return f"dataeff.attempt{attempt}.{what}"


def sweep_attempt_tag(attempt: int, what: str) -> str:
    """What a continued sweep's parent records of its attempt N (`previous_status`)."""
    return f"dataeff.sweep_attempt{attempt}.{what}"

# sub-runs (dataeff.stages.subrun): what each is for, and the key a later job finds it again by
ROLE_TAG = "role"  # pretraining | tuning | audit | al_round | active_learning (the loop)
SUBRUN_KEY_TAGS = {"pretraining": "pretrain_key", "tuning": "tune_key", "al_round": "al_key",
                   "audit": "audit_key"}

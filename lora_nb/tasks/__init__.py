"""Our own long tasks, each run as a job: ``python -m lora_nb.tasks.<name> <task.json>``.

A task reads its parameters from the JSON file the job system wrote into the run
folder (never secrets: those come through the environment), does its work, and
reports with :mod:`lora_nb.tasks.progress_reporter`.
"""

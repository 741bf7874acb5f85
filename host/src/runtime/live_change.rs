//! Changes to a running pipeline: a parameter change asked for by a control
//! stage, a stage rebuilt from a new recipe (a saved pipeline file, new
//! plugin code), the data plane's acknowledgement of each, and bridges put
//! on stages that control stages start reading.

use super::control_plane::ParamRequest;
use super::data_plane::{Command, Replacement, Retired};
use super::hybrid::HybridRuntime;
use crate::graph::{BuildError, StageRecipe, StageType};
use std::time::{Duration, Instant};

/// Why a change to the running pipeline was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The target is not in the pipeline.
    #[error("no stage `{0}` in the pipeline")]
    NoSuchStage(String),
    /// Parameter changes go to data-plane stages only.
    #[error("`{0}` is a control stage; only data-plane stages take parameter changes")]
    NotDataPlane(String),
    /// A bridge needs a data-plane stage with an output.
    #[error("`{0}` is not a data-plane stage with an output")]
    NoOutput(String),
    /// The value or the config it is merged into is not JSON.
    #[error("{0}")]
    NotJson(String),
    /// The stage could not be built with the change.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Too late: the data plane has ended.
    #[error("the data plane has ended")]
    DataPlaneEnded,
    /// The data plane has not taken the changes already sent.
    #[error("the data plane's command queue is full")]
    QueueFull,
}

/// A change sent to the data plane, awaiting its acknowledgement.
pub(super) struct InFlight {
    id: String,
    what: String,
    since: Option<Instant>,
    /// What the stage runs once the data plane takes it.
    recipe: StageRecipe,
}

impl HybridRuntime {
    /// Acts on a parameter change asked for by a control stage: the target's
    /// config with the new value must pass its plugin's checks and keep its
    /// output format; then a stage built from it is swapped in between two
    /// packets. A refused change is logged; the target runs on unchanged.
    pub fn apply_param(&mut self, request: ParamRequest) {
        let ParamRequest { from, change } = request;
        let (target, key) = (change.target.as_str(), change.key.as_str());
        match self.param_change(target, key, change.value_json.as_str()) {
            Ok(Some(())) => tracing::info!(
                "parameter change from `{from}`: `{target}`.{key} = {} sent to the data plane",
                change.value_json
            ),
            Ok(None) => {
                tracing::debug!("parameter change from `{from}`: `{target}`.{key} unchanged")
            }
            Err(error) => tracing::warn!(
                "parameter change from `{from}` refused: `{target}`.{key} = {}: {error}",
                change.value_json
            ),
        }
    }

    /// Sends `target` a stage with `key = value_json` merged into its latest
    /// config; `None` if that is its value already.
    fn param_change(
        &mut self,
        target: &str,
        key: &str,
        value_json: &str,
    ) -> Result<Option<()>, ChangeError> {
        let node = self
            .graph
            .stages
            .iter()
            .find(|n| n.id == target)
            .ok_or_else(|| ChangeError::NoSuchStage(target.into()))?;
        if node.stage_type != StageType::DataPlane {
            return Err(ChangeError::NotDataPlane(target.into()));
        }
        let base = self.latest.get(target).unwrap_or(&node.recipe);
        let value: serde_json::Value = serde_json::from_str(value_json)
            .map_err(|e| ChangeError::NotJson(format!("value is not JSON: {e}")))?;
        let value = base.typed_value(key, value);
        let mut config: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&base.config_json)
                .map_err(|e| ChangeError::NotJson(format!("current config: {e}")))?;
        if config.get(key) == Some(&value) {
            return Ok(None);
        }
        config.insert(key.to_string(), value);
        let config_json = serde_json::Value::Object(config).to_string();
        let recipe = base.changed(config_json, base.on_error)?;
        let replacement = self.prepare_replacement(target, recipe)?;
        self.send_replacement(replacement, target, format!("{key} = {value_json}"), None)?;
        Ok(Some(()))
    }

    /// Builds data-plane stage `id` anew from `recipe`, after checking that
    /// it works in place exactly when the running one does (the data plane's
    /// pools and edges were laid out for that). Nothing is sent yet.
    pub fn prepare_replacement(
        &self,
        id: &str,
        recipe: StageRecipe,
    ) -> Result<Box<Replacement>, ChangeError> {
        let index = *self
            .dp_index
            .get(id)
            .ok_or_else(|| ChangeError::NoSuchStage(id.into()))?;
        if self
            .running
            .get(id)
            .is_some_and(|running| running.runs_in_place() != recipe.runs_in_place())
        {
            return Err(BuildError::InPlaceWouldChange.into());
        }
        let object = recipe.build()?;
        Ok(Box::new(Replacement {
            stage: index,
            object,
            recipe,
            ticket: 0,
            requested: Instant::now(),
        }))
    }

    /// Sends a prepared replacement of stage `id` to the data plane, which
    /// swaps it in between two packets. `what` and `saved` (when the change
    /// was saved to disk) are for the log line when it is done.
    pub fn send_replacement(
        &mut self,
        replacement: Box<Replacement>,
        id: &str,
        what: String,
        saved: Option<Instant>,
    ) -> Result<(), ChangeError> {
        let mut replacement = replacement;
        self.next_ticket += 1;
        replacement.ticket = self.next_ticket;
        let recipe = replacement.recipe.clone();
        self.send(Command::Replace(replacement))?;
        self.latest.insert(id.to_string(), recipe.clone());
        self.in_flight.insert(
            self.next_ticket,
            InFlight {
                id: id.to_string(),
                what,
                since: saved,
                recipe,
            },
        );
        Ok(())
    }

    fn send(&mut self, command: Command) -> Result<(), ChangeError> {
        if self.data_plane_ended {
            return Err(ChangeError::DataPlaneEnded);
        }
        self.link
            .commands
            .push(command)
            .map_err(|_| ChangeError::QueueFull)?;
        self.data_plane_thread.unpark();
        Ok(())
    }

    /// Logs what the data plane handed back and drops old stages here, off
    /// the data-plane thread.
    pub fn on_retired(&mut self, item: Retired) {
        match item {
            Retired::Replaced {
                replacement,
                at_packet,
                applied,
                error,
            } => {
                let flight = self.in_flight.remove(&replacement.ticket);
                let id = flight
                    .as_ref()
                    .map_or_else(|| format!("#{}", replacement.stage), |f| f.id.clone());
                match error {
                    None => {
                        let waited = applied.duration_since(replacement.requested);
                        let since_save = flight
                            .as_ref()
                            .and_then(|f| f.since)
                            .map(|saved| format!(", {:.1} ms after the save", ms(applied - saved)))
                            .unwrap_or_default();
                        tracing::info!(
                            "stage `{id}` swapped at packet {at_packet} ({}): the data plane took it {:.2} ms after it was sent{since_save}",
                            flight.as_ref().map_or("new stage", |f| f.what.as_str()),
                            ms(waited),
                        );
                        // The old stage, stopped at the swap, is dropped here,
                        // off the data-plane thread.
                        drop(replacement);
                        if let Some(flight) = flight {
                            self.running.insert(flight.id, flight.recipe);
                        }
                    }
                    Some(error) => {
                        tracing::warn!(
                            "stage `{id}` was not swapped: {error}; it runs on as it was"
                        );
                        // A newer change still on its way supersedes this one
                        // and is the base to keep; without one, roll back.
                        if !self.in_flight.values().any(|f| f.id == id) {
                            self.roll_back(&id);
                        }
                    }
                }
            }
            Retired::Tap(tap) => drop(tap),
        }
    }

    /// After a refused swap of stage `id`: what it runs with is again the
    /// base for parameter changes and what the running graph says, so the
    /// next edit of the file is compared with the truth.
    pub fn roll_back(&mut self, id: &str) {
        let Some(running) = self.running.get(id) else {
            return;
        };
        self.latest.insert(id.to_string(), running.clone());
        if let Some(node) = self.graph.stages.iter_mut().find(|n| n.id == id) {
            node.recipe = running.clone();
        }
    }

    /// Puts a bridge on output port `port` of data-plane stage `id`, known
    /// to the control plane as `stream`, if none is there.
    pub fn ensure_bridge(
        &mut self,
        id: &str,
        port: usize,
        stream: &str,
    ) -> Result<(), ChangeError> {
        if self.control.bridged().any(|b| b == stream) {
            return Ok(());
        }
        let node = self.graph.stages.iter().find(|n| n.id == id);
        let Some(node) = node else {
            return Err(ChangeError::NoSuchStage(id.into()));
        };
        let (Some(&index), Some(format)) =
            (self.dp_index.get(id), node.recipe.output_formats.get(port))
        else {
            return Err(ChangeError::NoOutput(stream.into()));
        };
        let (tap, receiver) = super::bridge::tap(format);
        self.send(Command::SetTap {
            stage: index,
            port,
            tap: Some(tap),
        })?;
        self.control.add_bridge(stream, receiver);
        Ok(())
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

//! ReviewService: review cases (复查) opened by NEEDS_REVIEW outcomes and disputes, resolved by
//! registrars, visible to the employer concerned and its bureau.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::check_service::employer_for;
use super::{ApiError, AppState, Rpc, convert};
use crate::audit::NewEntry;
use crate::org::{Caller, Role};
use crate::proto;
use crate::proto::review_service_server::ReviewService;
use crate::roster::{ReviewReason, ReviewResolution};
use crate::store::{ReviewRow, ReviewViewer};

const LIST_DEFAULT: usize = 1_000;
const LIST_MAX: usize = 10_000;

pub struct ReviewApi {
    state: Arc<AppState>,
}

impl ReviewApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn list(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::ListReviewsRequest,
    ) -> Result<proto::ListReviewsResponse, ApiError> {
        let viewer = match caller.org.role {
            Role::Registrar => ReviewViewer::Registrar,
            Role::Bureau => ReviewViewer::Bureau(caller.org.uscc.clone()),
            _ => ReviewViewer::Employer(caller.org.uscc.clone()),
        };
        let limit = convert::page_size(req.limit, LIST_DEFAULT, LIST_MAX);
        let mut reviews = self
            .state
            .store
            .reviews(viewer, req.open_only, req.after_id, limit + 1)
            .await?;
        let more = reviews.len() > limit;
        reviews.truncate(limit);
        entry.outcome = "OK".into();
        entry.detail = format!("after={} returned={}", req.after_id, reviews.len());
        self.state.store.append_audit(entry.clone()).await?;
        Ok(proto::ListReviewsResponse {
            reviews: reviews.into_iter().map(review_to_proto).collect(),
            more,
        })
    }

    async fn resolve(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::ResolveReviewRequest,
    ) -> Result<proto::Review, ApiError> {
        let resolution = convert::required(
            "resolution",
            req.resolution,
            ReviewResolution::from_code,
            ReviewResolution::slugs,
        )?;
        let note = convert::note("note", &req.note)?;
        entry.detail = format!("review={}", req.review_id);
        let resolved = self
            .state
            .store
            .resolve_review(
                req.review_id,
                resolution,
                caller.org.uscc.clone(),
                note,
                self.state.now_micros(),
                entry.clone(),
            )
            .await?;
        match resolved {
            None => Err(ApiError::NotFound(format!(
                "no review case {}",
                req.review_id
            ))),
            Some((review, false)) => Err(ApiError::FailedPrecondition(format!(
                "review case {} was already resolved as {}",
                req.review_id,
                review
                    .resolution
                    .map(ReviewResolution::label)
                    .unwrap_or_default()
            ))),
            Some((review, true)) => Ok(review_to_proto(review)),
        }
    }

    async fn dispute(
        &self,
        caller: &Caller,
        entry: &mut NewEntry,
        req: proto::DisputeCheckRequest,
    ) -> Result<proto::Review, ApiError> {
        let state = &self.state;
        let employer = employer_for(state, caller, &req.on_behalf_of)?;
        entry.employer = employer.clone();
        let check_id = req.check_id.trim().to_string();
        if uuid::Uuid::parse_str(&check_id).is_err() {
            return Err(ApiError::invalid("check_id", "not a check id (a UUID)"));
        }
        let note = convert::note("note", &req.note)?;
        entry.check_id = check_id.clone();
        entry.detail = format!("note={note}");
        let disputed = state
            .store
            .dispute_check(
                employer.clone(),
                check_id.clone(),
                state.now_micros(),
                entry.clone(),
            )
            .await?;
        match disputed {
            Ok(Some(review)) => Ok(review_to_proto(review)),
            Ok(None) => Err(ApiError::NotFound(format!(
                "no check {check_id} for employer {employer}"
            ))),
            Err(outcome) => Err(ApiError::FailedPrecondition(format!(
                "check {check_id} answered {outcome}; only RECORD_FOUND is disputed (NEEDS_REVIEW opened a case by itself)"
            ))),
        }
    }
}

pub fn review_to_proto(review: ReviewRow) -> proto::Review {
    proto::Review {
        id: review.id,
        employer: review.employer,
        reason: review.reason.map(ReviewReason::code).unwrap_or_default(),
        check_id: review.check_id,
        alert_id: review.alert_id.unwrap_or_default(),
        opened_at: Some(convert::timestamp_micros(review.opened_at)),
        resolution: review
            .resolution
            .map(ReviewResolution::code)
            .unwrap_or_default(),
        effect: review
            .resolution
            .map(|r| r.effect().to_string())
            .unwrap_or_default(),
        resolved_at: review.resolved_at.map(convert::timestamp_micros),
        resolved_by: review.resolved_by,
        note: review.note,
        source_refs: review.source_refs,
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn list_reviews(
        &self,
        request: Request<proto::ListReviewsRequest>,
    ) -> Result<Response<proto::ListReviewsResponse>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::REVIEW_LIST).await?;
        let result = self.list(&caller, &mut entry, request.into_inner()).await;
        self.state.finish(entry, result).await
    }

    async fn resolve_review(
        &self,
        request: Request<proto::ResolveReviewRequest>,
    ) -> Result<Response<proto::Review>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::REVIEW_RESOLVE).await?;
        let result = self
            .resolve(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }

    async fn dispute_check(
        &self,
        request: Request<proto::DisputeCheckRequest>,
    ) -> Result<Response<proto::Review>, Status> {
        let (caller, mut entry) = self.state.authorize(&request, &Rpc::REVIEW_DISPUTE).await?;
        let result = self
            .dispute(&caller, &mut entry, request.into_inner())
            .await;
        self.state.finish(entry, result).await
    }
}

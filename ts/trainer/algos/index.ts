/**
 * The trainer's algorithms as pure functions in registries by name: advantage estimators,
 * policy losses (native kernel + TS reference each) and loss aggregation modes.
 */
export {
  ADVANTAGE_ESTIMATORS,
  type AdvantageEstimator,
  type AdvantageEstimatorName,
  type AdvantageInput,
  type AdvantageOptions,
  advantageEstimator,
  grpoAdvantages,
  mean,
  papoAdvantages,
  unbiasedStd,
} from './advantages.js';
export {
  aggregationWeights,
  LOSS_AGGREGATIONS,
  type LossAggregation,
  POLICY_LOSSES,
  type PolicyLossConfig,
  type PolicyLossFn,
  type PolicyLossInput,
  type PolicyLossMetrics,
  type PolicyLossName,
  policyLoss,
} from './policy_loss.js';

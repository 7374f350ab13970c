#!/usr/bin/env node
/**
 * The `npr` command. Each subcommand is a thin layer over the package's public API.
 */
import { Command } from 'commander';
import { registerBackendsCommand } from './backends.js';
import { registerBuildCommand } from './build.js';
import { registerDemoCommand } from './demo.js';
import { registerEvalCommand } from './eval.js';
import { registerGenerateCommand } from './generate.js';
import { registerInspectCommand } from './inspect.js';
import { registerPretrainCommand } from './pretrain.js';
import { registerScoreCommand } from './score.js';
import { registerTrainCommand } from './train.js';

const program = new Command();
program
  .name('npr')
  .description('Native Parallel Reasoning runtime: train models to reason in native parallel and run them with a parallel engine.')
  .showHelpAfterError();
registerBackendsCommand(program);
registerBuildCommand(program);
registerDemoCommand(program);
registerEvalCommand(program);
registerGenerateCommand(program);
registerInspectCommand(program);
registerPretrainCommand(program);
registerScoreCommand(program);
registerTrainCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error;
  console.error(`npr: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`);
  process.exitCode = 1;
});

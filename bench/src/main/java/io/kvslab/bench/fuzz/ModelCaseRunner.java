package io.kvslab.bench.fuzz;

import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.Session;

import java.nio.file.Path;

/**
 * Runs one GGUF or llama2.c case: {@code LoadedModel.load}, then one forward step of the loaded model (so that a
 * loader accepting inconsistent geometry would fail here, not in a user's run). Oracle: an accepted GGUF has no
 * overlapping tensor and none past the end of the file (by {@link GgufStructure}'s own reading), an accepted
 * checkpoint has exactly the size its header implies.
 */
final class ModelCaseRunner {
    private ModelCaseRunner() {}

    static CaseResult run(FuzzCase c, Path model, Path tokenizer) {
        LoadedModel m = LoadedModel.load(model, tokenizer);
        if (c.target() == FuzzTarget.GGUF) {
            String problem = GgufStructure.placementProblem(c.file());
            if (problem != null) {
                return CaseResult.violation("accepted a GGUF whose " + problem);
            }
        } else {
            long expected = Llama2cStructure.expectedSize(c.file());
            if (expected != c.file().length) {
                return CaseResult.violation("accepted a " + c.file().length + "-byte checkpoint whose header implies "
                        + expected + " bytes");
            }
        }
        try (Session s = Session.reference(m.model())) {
            s.step(0);
        }
        return CaseResult.accepted();
    }
}

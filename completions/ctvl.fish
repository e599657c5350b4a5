# ctvl fish completion, generated from the Typer app by `make completions`. Do not edit.

complete -c ctvl -f
complete -c ctvl -n '__fish_use_subcommand' -a cache -d 'Inspect, verify and merge HDF5 embedding caches.'
complete -c ctvl -n '__fish_use_subcommand' -a embed -d 'Embed CT volumes and report texts; skips what is already in the cache.'
complete -c ctvl -n '__fish_use_subcommand' -a finetune -d 'Contrastive fine-tuning, report generators, linear probes and report tokenizers.'
complete -c ctvl -n '__fish_use_subcommand' -a generate-report -d 'Radiology reports from CT volumes (`generate`, the default), their evaluation (`eval`) and the 18 CT-RATE findings read from report text (`label`). `ctvl generate-report SCANS...` is `ctvl generate-report generate SCANS...`.'
complete -c ctvl -n '__fish_use_subcommand' -a models -d 'List, inspect and download registered models.'
complete -c ctvl -n '__fish_use_subcommand' -a phantom -d 'Write N phantom chest CTs, reports.csv, labels.csv (CT-RATEs 18 columns) and pairs.csv.'
complete -c ctvl -n '__fish_use_subcommand' -a retrieve -d 'Image-to-image and report-to-image search over FAISS indexes, plus CT-CLIPs retrieval metrics.'
complete -c ctvl -n '__fish_use_subcommand' -a segment-organs -d 'Organ masks of CT scans\: per scan a multilabel NIfTI on the input grid (<scan>_organs.nii.gz), its label'
complete -c ctvl -n '__fish_use_subcommand' -a zeroshot -d 'Zero-shot abnormality probabilities from label prompts (`score`, the default) and their evaluation (`eval`). `ctvl zeroshot SCANS... --labels labels.txt` is `ctvl zeroshot score ...`.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -a info -d 'Summarise a cache\: models, entry counts, runs, pending journal.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -a ls -d 'List cached entries.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -a merge -d 'Join shard caches (e.g. from `ctvl embed --shard i/n`) into one.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -a verify -d 'Check structure, dimensions, finiteness and journal; exit 1 when problems are found.'
complete -c ctvl -n '__fish_seen_subcommand_from cache' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from info' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from info' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from info' -F
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from ls' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from ls' -l kind -r -F
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from ls' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from ls' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from ls' -F
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from merge' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from merge' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from merge' -F
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from verify' -l sources
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from verify' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from verify' -l help
complete -c ctvl -n '__fish_seen_subcommand_from cache ; and __fish_seen_subcommand_from verify' -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l reports -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l weights -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l batch-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l shard -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l regions -r -F
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from embed' -l help
complete -c ctvl -n '__fish_seen_subcommand_from embed' -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -a clip -d 'Contrastive image-report training (CLIP loss) of a registry model; the run directory becomes a model.'
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -a probe -d 'Multi-label linear probe on cached image embeddings; `ctvl zeroshot --head OUT` applies it.'
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -a report -d 'Train a report generator\: frozen image encoder -> projector -> causal LM (projector only, LoRA, or the'
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -a tokenizer -d 'Train a WordPiece tokenizer on report text (loadable with transformers AutoTokenizer).'
complete -c ctvl -n '__fish_seen_subcommand_from finetune' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l pairs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l weights -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l scratch
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l tokenizer -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l arch-param -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l epochs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l batch-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l accum -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l lr -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l weight-decay -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l grad-clip -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l warmup -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l val-pairs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l val-labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l text-aug
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l no-text-aug
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l text-aug-whole -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l label-weight -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l label-input -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l prompt-weight -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l masks -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l mask-weight -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l mask-stage -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l mask-pos-weight -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l mask-labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l clip-weight -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l freeze -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l lr-mult -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l aug-shift -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l aug-rotate -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l aug-scale -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l save-every -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l max-steps -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l image-root -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l input-cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l amp
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l no-amp
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l resume
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l overwrite
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from clip' -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l weights -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l val-fraction -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l steps -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l lr -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l weight-decay -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from probe' -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l pairs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l llm -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l tokenizer -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l weights -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l projector -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l queries -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l projector-heads -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l pool-kernel -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l llm-train -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l lora-r -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l lora-alpha -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l lora-targets -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l max-len -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l epochs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l batch-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l accum -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l lr -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l llm-lr -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l weight-decay -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l grad-clip -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l warmup -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l val-pairs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l val-max -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l save-every -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l max-steps -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l image-root -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l input-cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l amp
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l no-amp
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l resume
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l overwrite
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from report' -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l texts -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l vocab-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l max-length -r -F
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l cased
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -l help
complete -c ctvl -n '__fish_seen_subcommand_from finetune ; and __fish_seen_subcommand_from tokenizer' -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -a eval -d 'BLEU-1..4, ROUGE-L, METEOR (when NLTKs WordNet data is installed) and clinical efficacy\: precision,'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -a generate -d 'One report per scan (columns id, method, model, report, source, note). A scan that cannot be read is'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -a label -d 'The 18 CT-RATE findings of each report (negation- and uncertainty-aware rules)\: a labels table in'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report' -l help
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -l pred -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -l truth -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -l per-finding
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -l help
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from eval' -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l method -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l index -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l exclude-self
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l threshold -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l decoding -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l beams -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l temperature -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l top-p -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l repetition-penalty -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l max-new-tokens -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l batch-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -l help
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from generate' -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from label' -l uncertain -r -F
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from label' -l evidence
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from label' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from label' -l help
complete -c ctvl -n '__fish_seen_subcommand_from generate-report ; and __fish_seen_subcommand_from label' -F
complete -c ctvl -n '__fish_seen_subcommand_from models' -a info -d 'Show a model card\: preprocessing, licence, weight sources and whether they are present locally.'
complete -c ctvl -n '__fish_seen_subcommand_from models' -a list -d 'List registered models.'
complete -c ctvl -n '__fish_seen_subcommand_from models' -a pull -d 'Download a models weights into $CTVL_HOME/weights/<model>/ and verify their sha256.'
complete -c ctvl -n '__fish_seen_subcommand_from models' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from info' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from info' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from info' -F
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from list' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from list' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from list' -F
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from pull' -l token -r -F
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from pull' -l force
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from pull' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from pull' -l help
complete -c ctvl -n '__fish_seen_subcommand_from models ; and __fish_seen_subcommand_from pull' -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l n -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l findings -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l finding-rate -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l resolution -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l start -r -F
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l masks
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -l help
complete -c ctvl -n '__fish_seen_subcommand_from phantom' -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -a build -d 'Build a FAISS index (cosine) over a caches image embeddings, with a sidecar JSON of ids and sources.'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -a eval -d 'CT-CLIPs image->image MAP@K (Jaccard relevance) and report->image Recall@K, exact search.'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -a query -d 'Ranked nearest scans for image queries (image->image) or report texts (report->image).'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve' -l help
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l index -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l kind -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l add
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l overwrite
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l gpu
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l no-gpu
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l memory-budget -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l region -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l reports -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -l help
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from build' -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l reports -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l map-k -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l recall-k -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l ctclip-compat
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -l help
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from eval' -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l index -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l image -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l text -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l reports -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l k -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l exclude-self
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l regions -r -F
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -l help
complete -c ctvl -n '__fish_seen_subcommand_from retrieve ; and __fish_seen_subcommand_from query' -F
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l backend -r -F
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l organs -r -F
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l split
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l preview
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l fast
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -l help
complete -c ctvl -n '__fish_seen_subcommand_from segment-organs' -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot' -a eval -d 'Per-finding AUROC, F1, accuracy, precision, recall at CT-CLIPs threshold (ROC point closest to (0,1)),'
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot' -a score -d 'P(finding present) per scan\: CT-CLIPs protocol ("{X} is present." vs "{X} is not present.", softmax'
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot' -l help
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l pred -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l truth -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l bootstrap -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l seed -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l thresholds-out -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -l help
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from eval' -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l labels -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l model -x -a 'ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra'
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l cache -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l templates -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l head -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l threshold -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l weights -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l batch-size -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l workers -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l device -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l region -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l regions -r -F
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l format -x -a 'human json jsonl csv'
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -l help
complete -c ctvl -n '__fish_seen_subcommand_from zeroshot ; and __fish_seen_subcommand_from score' -F
